"""smpc's benchmarks: ``python -m smpc_bench`` prints the results table; ``pytest smpc_bench`` runs pytest-benchmark."""
