"""One run of the speed benchmark: for each model, ours then the HF peer back to back (both see
the same machine load), the device's matmul rate, optionally the largest batch that fits."""
import gc
import os
import platform
import shlex
import statistics
import sys
import time

import jax
import jax.numpy as jnp

from configs import speed_benchmark
from tools.benchmarks.speed import hf_peers, ours, profile, report

DEFAULT_BATCH = {'tiny': 4, 'real': 8}
MATMUL = {'cpu': (jnp.float32, 1024), 'gpu': (jnp.bfloat16, 8192), 'tpu': (jnp.bfloat16, 8192)}
REMAT_ARMS = ('none', 'full')
ROUNDS = 3  # Interleaved rounds of ours and theirs (both see the same machine load).


def row(name: str, config, batch_size: int, steps: int, matmul_rate: float,
        with_hf: bool = True, warmup: int = 2, profile_steps: int = 0,
        phases: bool = True) -> dict:
  """Our measurement of `config` and, if `with_hf`, its HF peer's, the timed calls interleaved
  in ROUNDS rounds (each call `steps` / ROUNDS times a round) after `warmup` calls each;
  ratio = our clips/s / theirs (train step). Where there is a peer, 'phases' compares like with
  like, phase by phase (hf_peers.PHASES): forward (the loss), forward + backward (loss and
  gradients; no optimizer on either side) and the train step (each with the preset's optimizer
  family and clipping), each phase's ours/HF pair timed back to back; on CPU the peer runs at its
  fastest torch thread count (hf_peers.fastest_threads). With `profile_steps`, where our step's
  device time goes (speed.profile) over that many more steps. `phases` False times the
  steps only."""
  t, h, w = ours.clip_shape(config)
  compiled = ours.compile_train_step(config, batch_size)
  peer = hf_peers.prepare(config, batch_size) if with_hf else None
  sides = {('ours', 'step'): lambda: ours.run_step(compiled)}
  phases_compile_s, threads = None, None
  if peer:
    calls, _ = peer
    if jax.devices()[0].platform == 'cpu' and not _torch_cuda():
      threads = hf_peers.fastest_threads(calls['step'], (1, os.cpu_count()))
    sides[('hf', 'step')] = calls['step']
  if peer and phases:
    ours_phases = ours.compile_phases(config, compiled)
    phases_compile_s = ours_phases.compile_s
    sides = {}
    for phase in hf_peers.PHASES:  # Each pair back to back.
      sides[('ours', phase)] = (lambda: ours.run_step(compiled)) if phase == 'step' else \
          getattr(ours_phases, phase)
      sides[('hf', phase)] = calls[phase]
  times = {side: [] for side in sides}
  for fn in sides.values():
    ours.time_calls(fn, warmup)
  for calls_per_side in _rounds(steps):
    for side, fn in sides.items():
      times[side] += ours.time_calls(fn, calls_per_side)
  measured = ours.summary(config, compiled, times[('ours', 'step')])
  theirs = hf_peers.summary(peer[1], batch_size, times[('hf', 'step')]) if peer else None
  if theirs and threads:
    theirs['torch_threads'] = threads
  if profile_steps:
    measured['profile'] = profile.profile_steps(sides[('ours', 'step')],
                                                compiled.run.as_text(), profile_steps)
  del compiled, peer, sides
  hf_peers.release_memory()
  gc.collect()
  return dict(model=name, preset=speed_benchmark.MODELS[name], clip=f'{t}x{h}x{w}' if h != w else
              f'{t}x{h}^2', batch=batch_size, steps=steps, **measured,
              mfu=measured['train_flops_per_s'] / matmul_rate, hf=theirs,
              ratio=measured['clips_per_s'] / theirs['clips_per_s'] if theirs else None,
              phases=_phases(times) if theirs and phases else None,
              phases_compile_s=phases_compile_s)


def _phases(times: dict) -> list[dict]:
  """Per phase: our and HF's median ms and ratio = HF ms / our ms (> 1: ours is faster)."""
  rows = []
  for phase in hf_peers.PHASES:
    ours_ms, hf_ms = (statistics.median(times[(side, phase)]) * 1e3 for side in ('ours', 'hf'))
    rows.append(dict(phase=phase, ours_ms=ours_ms, hf_ms=hf_ms, ratio=hf_ms / ours_ms,
                     ours_fastest_ms=min(times[('ours', phase)]) * 1e3,
                     hf_fastest_ms=min(times[('hf', phase)]) * 1e3))
  return rows


def _torch_cuda() -> bool:
  import torch  # pylint: disable=import-outside-toplevel
  return torch.cuda.is_available()


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
    return with_remat(speed_benchmark.benchmark_config(name, size), arm)
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
        max_batch_tolerance: float = 0.0, on_update=None, tag: str = '',
        time_budget_s: float | None = None, phases: bool = True) -> dict:
  """The record of one benchmark run (see report.write): a row per model of `names` (a model
  whose measurement raises gets a row with its 'error' and the run goes on), then the largest
  batch of each of `max_batch_models` per remat arm. `on_update(record)` is called after each
  row and search, so an interrupted run keeps what it measured; `tag` names a part of a day's
  runs (report.stem); `phases` as in `row`. Once `time_budget_s` seconds have passed, models
  not yet started get a 'skipped' row and no search starts (one device call has a fixed
  wall-time limit)."""
  start = time.monotonic()
  over_budget = lambda: time_budget_s is not None and (  # noqa: E731
      time.monotonic() - start > time_budget_s)
  import torch  # pylint: disable=import-outside-toplevel
  import transformers  # pylint: disable=import-outside-toplevel
  names = speed_benchmark.check_names(names)
  max_batch_models = speed_benchmark.check_names(max_batch_models)
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
    if over_budget():
      record['rows'].append(dict(model=name, skipped=f'the run\'s time budget of '
                                                     f'{time_budget_s:.0f} s was spent'))
      update(record)
      continue
    try:
      record['rows'].append(row(name, speed_benchmark.benchmark_config(name, size), batch_size,
                                steps, matmul_rate, with_hf, profile_steps=profile_steps,
                                phases=phases))
    except Exception as error:  # pylint: disable=broad-except
      record['rows'].append(dict(model=name, error=f'{type(error).__name__}: {error}'[:2000]))
    update(record)
  if max_batch_models and not over_budget():
    for arm in remat_arms:  # Fail before any search where an arm cannot be run.
      with_remat(speed_benchmark.benchmark_config(max_batch_models[0], size), arm)
    record['max_batch'] = []
    for name in max_batch_models:
      for arm in remat_arms:
        if over_budget():
          break
        record['max_batch'].append(max_batch(name, size, arm, ours.device_capacity(device),
                                             max_batch_tolerance))
        update(record)
  return record


def _notes(cpu: bool) -> list[str]:
  notes = [
      f"Ours: {'float32' if cpu else 'bfloat16 compute, float32 params, cudnn attention'}; "
      f"HF: {'float32' if cpu else 'bf16 autocast'}, SDPA attention except TimeSformer (eager: "
      f"transformers has no SDPA path for it); both with the preset's optimizer (SGD or AdamW: "
      f"optax vs torch.optim) and gradient clipping in the step.",
      'Phases (models with an HF peer): fwd = the loss (HF under torch.no_grad), fwd+bwd = loss '
      'and every gradient, no optimizer on either side, step = the full train step; each x is '
      'HF ms / our ms (> 1: ours faster), each phase\'s pair timed back to back in every round.',
      'Same configuration: the HF model has exactly our parameter count (checked in '
      'tests/tools/benchmarks/speed). Our train step also draws its RNGs, masks (VideoMAE) and the '
      'presets\' label smoothing / Mixup in-graph; the HF VideoMAE classifier has no stochastic '
      'depth (ours 0.1).',
      'GFLOPs and MFU count each layer once and no remat recomputation (flops.counting_config: '
      'XLA counts a scan body once and a cuDNN call not at all).',
  ]
  if cpu:
    notes.append(f'Threads: XLA uses its own pool over the {os.cpu_count()} cores; torch gets '
                 f'whichever of 1 or {os.cpu_count()} threads runs its step faster at warm-up '
                 f'(hf.torch_threads in the JSON): under load from other processes OpenMP at '
                 f'{os.cpu_count()} threads ran HF 2-3x slower than at 1.')
    notes.append(f'{platform.machine()} CPU with {os.cpu_count()} cores shared with other '
                 f'engineers: ours and theirs run interleaved ({ROUNDS} rounds per model) to '
                 f'see the same load, but absolute times vary between runs.')
  return notes
