"""Speed benchmark of the presets (`tools/benchmark.py models`): our jitted train step against the
Hugging Face PyTorch model of the same configuration. Which presets, at which size (reduced on
CPU, real on accelerators): configs/speed_benchmark.py (the tool puts the repo on sys.path).

  ours.py     our train step: compile time, step time, XLA FLOPs, MFU, memory, largest batch
  hf_peers.py the Hugging Face model of the same configuration and its timed training step
  harness.py  one run: ours then the HF peer per model, the matmul rate, the largest batches
  report.py   device name, the JSON record and the table in benchmarks/README.md
"""
