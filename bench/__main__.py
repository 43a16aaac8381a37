"""Run every benchmark: `make bench` (or `python -m bench`)."""

from bench import inbox, step_cost, timers

if __name__ == "__main__":
    step_cost.main()
    timers.main()  # PostgreSQL and Redis: skipped without BENCH_/TEST_ URLs
    inbox.main()
