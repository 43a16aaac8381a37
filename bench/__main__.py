"""Run every benchmark: `make bench` (or `python -m bench`)."""

from bench import step_cost

if __name__ == "__main__":
    step_cost.main()
