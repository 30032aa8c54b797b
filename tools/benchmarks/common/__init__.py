"""What several benchmarks share: their common flags, result files and timed training runs."""
