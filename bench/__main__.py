"""Run every benchmark: `make bench` (or `python -m bench`). The PostgreSQL parts (timers,
start throughput on PostgreSQL, the load test) skip without BENCH_/TEST_ URLs: `make bench-pg`
runs them all under .ci/run, which starts a throw-away PostgreSQL and Redis."""

from bench import inbox, load, start_throughput, step_cost, timers

if __name__ == "__main__":
    step_cost.main()
    start_throughput.main()
    inbox.main()
    timers.main()
    load.main()
