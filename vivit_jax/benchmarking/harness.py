"""One run of the speed benchmark: for each model, ours then the HF peer back to back (both see
the same machine load), the device's matmul rate, optionally the largest batch that fits."""
import gc
import os
import platform
import shlex
import sys

import jax
import jax.numpy as jnp

from vivit_jax.benchmarking import hf_peers, ours, presets, report

DEFAULT_BATCH = {'tiny': 4, 'real': 8}
MATMUL = {'cpu': (jnp.float32, 1024), 'gpu': (jnp.bfloat16, 8192), 'tpu': (jnp.bfloat16, 8192)}
REMAT_ARMS = ('none', 'full')
ROUNDS = 3  # Interleaved rounds of ours and theirs (both see the same machine load).


def row(name: str, config, batch_size: int, steps: int, matmul_rate: float,
        with_hf: bool = True, warmup: int = 2) -> dict:
  """Our measurement of `config` and, if `with_hf`, its HF peer's, the timed steps interleaved
  in ROUNDS rounds (each side `steps` / ROUNDS steps a round) after `warmup` steps each;
  ratio = our clips/s / theirs."""
  t, h, w = ours.clip_shape(config)
  compiled = ours.compile_train_step(config, batch_size)
  peer = hf_peers.prepare(config, batch_size) if with_hf else None
  sides = [lambda: ours.run_step(compiled)] + ([peer[0]] if peer else [])
  times = [[] for _ in sides]
  for fn in sides:
    ours.time_calls(fn, warmup)
  for calls in _rounds(steps):
    for fn, side_times in zip(sides, times):
      side_times += ours.time_calls(fn, calls)
  measured = ours.summary(config, compiled, times[0])
  theirs = hf_peers.summary(peer[1], batch_size, times[1]) if peer else None
  del compiled, peer, sides
  gc.collect()
  return dict(model=name, preset=presets.MODELS[name], clip=f'{t}x{h}x{w}' if h != w else
              f'{t}x{h}^2', batch=batch_size, steps=steps, **measured,
              mfu=measured['train_flops_per_s'] / matmul_rate, hf=theirs,
              ratio=measured['clips_per_s'] / theirs['clips_per_s'] if theirs else None)


def _rounds(steps: int) -> list[int]:
  """`steps` split into at most ROUNDS rounds."""
  rounds = min(ROUNDS, steps)
  return [steps // rounds + (i < steps % rounds) for i in range(rounds)]


def with_remat(config, arm: str):
  """`config` with config.model.remat = `arm`; 'none' leaves a config without the field as is."""
  if 'remat' not in config.model:
    if arm == 'none':
      return config
    raise ValueError(f"--remat_arms={arm} needs config.model.remat, which this checkout's models "
                     f"do not have yet; pass --remat_arms=none.")
  config.model.remat = arm
  return config


def max_batches(names, size: str, arms) -> list[dict]:
  """The largest batch that fits on one device per model and remat arm (doubling, then
  bisection on RESOURCE_EXHAUSTED)."""
  for arm in arms:  # Fail before any search where an arm cannot be run.
    with_remat(presets.benchmark_config(names[0], size), arm)
  return [dict(model=name, remat=arm, batch=ours.largest_batch(
              lambda b, n=name, a=arm: ours.fits(with_remat(presets.benchmark_config(n, size), a),
                                                 b)))
          for name in names for arm in arms]


def run(names, size: str, steps: int, batch_size: int | None = None, with_hf: bool = True,
        find_max_batch: bool = False, remat_arms=REMAT_ARMS) -> dict:
  """The record of one benchmark run (see report.write)."""
  import torch  # pylint: disable=import-outside-toplevel
  import transformers  # pylint: disable=import-outside-toplevel
  names = presets.check_names(names)
  torch.set_num_threads(os.cpu_count())
  device = jax.devices()[0]
  dtype, matmul_size = MATMUL[device.platform]
  matmul_rate = ours.matmul_flops_per_s(dtype, matmul_size)
  batch_size = batch_size or DEFAULT_BATCH[size]
  rows = [row(name, presets.benchmark_config(name, size), batch_size, steps, matmul_rate,
              with_hf) for name in names]
  cpu = device.platform == 'cpu'
  notes = [
      f"Ours: {'float32' if cpu else 'bfloat16 compute, float32 params, cudnn attention'}; "
      f"HF: {'float32' if cpu else 'bf16 autocast'}, SDPA attention except TimeSformer (eager: "
      f"transformers has no SDPA path for it); both with the preset's optimizer (SGD or AdamW) "
      f"and gradient clipping. torch.set_num_threads({os.cpu_count()}) (the core count).",
      'Same configuration: the HF model has exactly our parameter count (checked in '
      'tests/benchmarking). Our train step also draws its RNGs, masks (VideoMAE) and the '
      'presets\' label smoothing / Mixup in-graph; the HF VideoMAE classifier has no stochastic '
      'depth (ours 0.1).',
  ]
  if cpu:
    notes.append(f'{platform.machine()} CPU with {os.cpu_count()} cores shared with other '
                 f'engineers: ours and theirs run interleaved ({ROUNDS} rounds per model) to '
                 f'see the same load, but absolute times vary between runs.')
  record = dict(benchmark='models', device=report.device_name(device), date=report.today(),
                size=size, matmul_tflops=matmul_rate / 1e12, matmul_dtype=jnp.dtype(dtype).name,
                matmul_size=matmul_size, rows=rows, notes=notes,
                software=f'jax {jax.__version__}, torch {torch.__version__}, transformers '
                         f'{transformers.__version__}',
                command='python tools/benchmark.py ' + shlex.join(sys.argv[1:]))
  if find_max_batch:
    record['max_batch'] = max_batches(names, size, remat_arms)
  return record
