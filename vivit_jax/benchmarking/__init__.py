"""The presets the benchmarks and the accelerator-lowering tests measure (presets.py); the
benchmarks themselves are tools/benchmarks/."""
