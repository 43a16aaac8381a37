"""Benchmarks: casemgr's costs beside the raw SpiffWorkflow cost measured in the same run."""
