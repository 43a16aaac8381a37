"""What runs with no person at the keyboard, as plain functions over the models.

`casemgr.jobs` wraps each in a Celery task; tests call them directly. Every function here is
idempotent: a rerun (a redelivered message, a retry after a crash) finds its work done.

* ``locks``: one runner at a time for jobs that are not per-case (PostgreSQL advisory locks).
* ``status``: heartbeats, failed jobs and the figures of the admin page.
* ``ledger_history``: the nightly aging snapshot and DSO history.
* ``past_due``: the weekly past-due report per sales rep (the page and the e-mail).
* ``promises``: what a broken promise to pay raises.
* ``referrals``: automatic collection referrals past a threshold (off by default).
* ``messages``: payment messages for cases whose customer paid by a route that did not say so.
* ``mail``: SMTP, or an outbox folder when no server is configured.
"""
