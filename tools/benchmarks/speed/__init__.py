"""The speed benchmark (`tools/benchmark.py models`): our jitted train step against the Hugging
Face PyTorch model of the same configuration.

  ours.py     our train step: compile time, step time, XLA FLOPs, MFU, memory, largest batch
  hf_peers.py the Hugging Face model of the same configuration and its timed training step
  profile.py  where our step's device time goes, from a jax.profiler trace
  harness.py  one run: ours then the HF peer per model, the matmul rate, the largest batches
  report.py   device name, the JSON record and the table in benchmarks/README.md
The presets and their CPU sizes are configs/speed_benchmark.py.
"""
