"""tests/test_api_cases.py, unchanged, on PostgreSQL (see conftest.py's ``app`` fixture).

Its tests, fixtures and helpers are taken over as they are, so an API test added there runs
on both databases without being written twice.
"""

from __future__ import annotations

from tests import test_api_cases as _suite

globals().update({k: v for k, v in vars(_suite).items() if not k.startswith("__")})
