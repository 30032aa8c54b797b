"""One run of the speed benchmark: for each model, ours then the HF peer back to back (both see
the same machine load), the device's matmul rate, optionally the largest batch that fits."""
import gc
import os
import platform
import shlex
import sys

import jax
import jax.numpy as jnp

from vivit_jax.benchmarking import hf_peers, ours, presets, profile, report

DEFAULT_BATCH = {'tiny': 4, 'real': 8}
MATMUL = {'cpu': (jnp.float32, 1024), 'gpu': (jnp.bfloat16, 8192), 'tpu': (jnp.bfloat16, 8192)}
REMAT_ARMS = ('none', 'full')
ROUNDS = 3  # Interleaved rounds of ours and theirs (both see the same machine load).


def row(name: str, config, batch_size: int, steps: int, matmul_rate: float,
        with_hf: bool = True, warmup: int = 2, profile_steps: int = 0) -> dict:
  """Our measurement of `config` and, if `with_hf`, its HF peer's, the timed steps interleaved
  in ROUNDS rounds (each side `steps` / ROUNDS steps a round) after `warmup` steps each;
  ratio = our clips/s / theirs; with `profile_steps`, where our step's device time goes
  (benchmarking.profile) over that many more steps."""
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
  if profile_steps:
    measured['profile'] = profile.profile_steps(sides[0], compiled.run.as_text(), profile_steps)
  del compiled, peer, sides
  hf_peers.release_memory()
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


def max_batch(name: str, size: str, arm: str, capacity: int | None,
              tolerance: float = 0.0) -> dict:
  """The largest batch of model `name` at remat `arm` that runs on one device. With the device's
  `capacity` (bytes), the search starts at the batch its compiled memory predicts
  (ours.predict_largest_batch) and steps by 1 + `tolerance`; else it doubles from 1. Bisection
  stops once the batch that fails is within `tolerance` of the one that runs."""
  def config():
    return with_remat(presets.benchmark_config(name, size), arm)
  prediction = ours.predict_largest_batch(lambda b: ours.compiled_bytes(config(), b),
                                          capacity) if capacity else {}
  search = dict(start=prediction['predicted'], growth=1 + max(tolerance, 1 / 16)) if prediction \
      else {}
  good, bad = ours.largest_batch(lambda b: ours.fits(config(), b), tolerance=tolerance,
                                 **search)
  return dict(model=name, remat=arm, batch=good, fails_at=bad, capacity_bytes=capacity,
              **prediction)


def run(names, size: str, steps: int, batch_size: int | None = None, with_hf: bool = True,
        profile_steps: int = 0, max_batch_models=(), remat_arms=REMAT_ARMS,
        max_batch_tolerance: float = 0.0, on_update=None, tag: str = '') -> dict:
  """The record of one benchmark run (see report.write): a row per model of `names` (a model
  whose measurement raises gets a row with its 'error' and the run goes on), then the largest
  batch of each of `max_batch_models` per remat arm. `on_update(record)` is called after each
  row and search, so an interrupted run keeps what it measured; `tag` names a part of a day's
  runs (report.stem)."""
  import torch  # pylint: disable=import-outside-toplevel
  import transformers  # pylint: disable=import-outside-toplevel
  names = presets.check_names(names)
  max_batch_models = presets.check_names(max_batch_models)
  torch.set_num_threads(os.cpu_count())
  device = jax.devices()[0]
  dtype, matmul_size = MATMUL[device.platform]
  matmul_rate = ours.matmul_flops_per_s(dtype, matmul_size)
  batch_size = batch_size or DEFAULT_BATCH[size]
  record = dict(benchmark='models', device=report.device_name(device), date=report.today(),
                tag=tag, size=size, matmul_tflops=matmul_rate / 1e12,
                matmul_dtype=jnp.dtype(dtype).name, matmul_size=matmul_size, rows=[],
                notes=_notes(device.platform == 'cpu'),
                software=f'jax {jax.__version__}, torch {torch.__version__}, transformers '
                         f'{transformers.__version__}',
                command='python tools/benchmark.py ' + shlex.join(sys.argv[1:]))
  update = on_update or (lambda _: None)
  for name in names:
    try:
      record['rows'].append(row(name, presets.benchmark_config(name, size), batch_size, steps,
                                matmul_rate, with_hf, profile_steps=profile_steps))
    except Exception as error:  # pylint: disable=broad-except
      record['rows'].append(dict(model=name, error=f'{type(error).__name__}: {error}'[:2000]))
    update(record)
  if max_batch_models:
    for arm in remat_arms:  # Fail before any search where an arm cannot be run.
      with_remat(presets.benchmark_config(max_batch_models[0], size), arm)
    record['max_batch'] = []
    for name in max_batch_models:
      for arm in remat_arms:
        record['max_batch'].append(max_batch(name, size, arm, ours.device_capacity(device),
                                             max_batch_tolerance))
        update(record)
  return record


def _notes(cpu: bool) -> list[str]:
  notes = [
      f"Ours: {'float32' if cpu else 'bfloat16 compute, float32 params, cudnn attention'}; "
      f"HF: {'float32' if cpu else 'bf16 autocast'}, SDPA attention except TimeSformer (eager: "
      f"transformers has no SDPA path for it); both with the preset's optimizer (SGD or AdamW) "
      f"and gradient clipping. torch.set_num_threads({os.cpu_count()}) (the core count).",
      'Same configuration: the HF model has exactly our parameter count (checked in '
      'tests/benchmarking). Our train step also draws its RNGs, masks (VideoMAE) and the '
      'presets\' label smoothing / Mixup in-graph; the HF VideoMAE classifier has no stochastic '
      'depth (ours 0.1).',
      'GFLOPs and MFU count each layer once and no remat recomputation (flops.counting_config: '
      'XLA counts a scan body once and a cuDNN call not at all).',
  ]
  if cpu:
    notes.append(f'{platform.machine()} CPU with {os.cpu_count()} cores shared with other '
                 f'engineers: ours and theirs run interleaved ({ROUNDS} rounds per model) to '
                 f'see the same load, but absolute times vary between runs.')
  return notes
