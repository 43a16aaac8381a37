"""The AR ledger's figures, imports and writes.

* ``aging``: open balances by bucket as of any date, rebuilt from payment history;
* ``metrics``: DSO, exposure, available credit, average days late, ``customer_summary``;
* ``imports``: all-or-nothing CSV import from the ERP;
* ``operations``: the ledger writes the cases make (credit memos, write-offs, holds, …);
* ``ibm_sample``: the converter of IBM's AR sample into the import CSVs;
* ``commands``: the ``flask ledger`` command group.

Each module is imported by name (``from casemgr.ledger.metrics import customer_summary``):
this package imports nothing itself, so loading one part never drags in the others.
"""
