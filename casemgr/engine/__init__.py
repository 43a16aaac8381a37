"""The engine: the only package that imports SpiffWorkflow.

Everything else asks it to start a case, act on a task or wake timers; each such step is
one transaction (see cases.py).
"""

from casemgr.engine import clock  # noqa: F401  (installs the engine clock for timers)
