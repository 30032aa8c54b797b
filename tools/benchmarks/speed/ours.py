"""Our side of the speed benchmark: the one jitted train step (common.train_step) of a config on
one device, timed, with its XLA FLOPs and memory; the device's matmul rate; the largest
batch that fits."""
import dataclasses
import gc
import math
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from tools.benchmarks.common import train_step
from vivit_jax.models import flops
from vivit_jax.train import sharding, step

OOM_MARKERS = ('RESOURCE_EXHAUSTED', 'Out of memory', 'out of memory')


@dataclasses.dataclass
class Compiled:
  """A compiled train step on one device, its state and one batch on that device."""
  run: object  # (state, batch) -> (state, metrics), the state donated.
  state: object
  batch: dict
  compile_s: float  # Lowering + compilation.
  train_flops: float | None  # model_train_flops: one step (fwd + bwd + update), whole batch.
  memory: object  # compiled.memory_analysis() (None where the backend gives none).
  flops_source: str | None = None  # 'xla-cpu' or 'analytic' (model_train_flops).


def clip_shape(config) -> tuple[int, int, int]:
  """(T, H, W) of the config's clips."""
  ds = config.dataset
  return ds.num_frames, ds.crop_size, ds.crop_size


def random_batch(config, batch_size: int, extra_input_shapes: dict, seed: int = 0) -> dict:
  """Random normalised videos (B, T, H, W, 3), labels (B,) and the model's extra inputs
  (name -> shape)."""
  rng = np.random.default_rng(seed)
  shape = (batch_size, *clip_shape(config), 3)
  batch = {'video': rng.normal(size=shape).astype(np.float32),
           'label': rng.integers(0, max(config.model.get('num_classes', 1), 1),
                                 size=(batch_size,)).astype(np.int32)}
  batch.update({k: rng.normal(size=s).astype(np.float32) for k, s in extra_input_shapes.items()})
  return batch


def _train_step(config, batch_size: int, device=None):
  """(the train step of `config` on a one-`device` mesh (default: the first), built
  (common.train_step), one random batch of `batch_size` on that device)."""
  built = train_step.build(config, (batch_size, *clip_shape(config), 3),
                           [device or jax.devices()[0]])
  batch = random_batch(config, batch_size, built.exp.extra_input_shapes)
  return built, sharding.put_batch(batch, built.exp.batch_sharding)


def _phase_fns(model, task, mesh, rules, seed: int):
  """(forward, forward_backward): jitted `(params, batch_stats, batch) -> loss` and `-> (loss,
  grads)` of the train step's own loss (`task.prepare`, the model in training mode with the
  step's RNG streams, `task.loss`), without the optimizer update, clipping, finite check and
  metrics; under the step's mesh, logical-axis rules and attention kernels."""
  def loss(params, batch_stats, batch):
    rngs, augment = step.train_rngs(model, seed, 0)  # The first step's.
    batch = task.prepare(batch, augment)
    # pylint: disable=protected-access
    outputs, _ = model.apply(step.variables(params, batch_stats), batch['video'], train=True,
                             rngs=rngs, mutable=['batch_stats'],
                             **step._model_kwargs(model, task, batch))
    # pylint: enable=protected-access
    return task.loss(outputs, batch)[0]

  with_rules = step._with_rules  # pylint: disable=protected-access
  return (with_rules(jax.jit(loss), mesh, rules),
          with_rules(jax.jit(jax.value_and_grad(loss)), mesh, rules))


@dataclasses.dataclass
class Phases:
  """Our step's parts as separately compiled calls on a `Compiled` step's current state and
  batch, each waiting for its work and returning it: `forward()` (the loss) and
  `forward_backward()` (the loss and the gradients of every parameter); compile_s is both
  compiles."""
  forward: object
  forward_backward: object
  compile_s: float


def compile_phases(config, compiled: 'Compiled', device=None) -> Phases:
  """`Phases` of `config` at the batch of `compiled` (its train step, on the same device), timed
  against the HF peer's forward and forward + backward (speed.harness)."""
  built = train_step.build(config, compiled.batch['video'].shape, [device or jax.devices()[0]])
  exp = built.exp
  forward, forward_backward = _phase_fns(exp.model, exp.task, exp.mesh, exp.rules, config.seed)
  state = compiled.state
  start = time.perf_counter()
  fns = [f.lower(state.params, state.batch_stats, compiled.batch).compile()
         for f in (forward, forward_backward)]
  compile_s = time.perf_counter() - start

  def call(fn):  # Reads the state at call time: the step donates and replaces it.
    return lambda: jax.block_until_ready(fn(compiled.state.params, compiled.state.batch_stats,
                                            compiled.batch))

  return Phases(*map(call, fns), compile_s)


# Train step FLOPs per forward FLOP where XLA gives no count: the backward is twice the forward.
TRAIN_PER_FORWARD = 3


def model_train_flops(config, batch_size: int) -> tuple[float, str]:
  """(FLOPs of one train step at `batch_size`, source): the FLOPs of MFU. XLA's cost analysis of
  the step of `flops.counting_config` (every layer and attention product counted once, no remat
  recomputation) lowered on the CPU backend ('xla-cpu'; GPU/TPU plugins give no cost analysis),
  else TRAIN_PER_FORWARD x `flops.analytic_flops` per clip ('analytic': matrix products and
  convolutions only)."""
  counting = config.copy_and_resolve_references()
  counting.model = flops.counting_config(config.model)
  built, batch = _train_step(counting, batch_size, jax.devices('cpu')[0])
  counted = flops.cost_flops(built.run.lower(built.exp.abstract_state, batch))
  if counted is not None:
    return counted, 'xla-cpu'
  analytic = flops.analytic_flops(config.model, clip_shape(config))
  return float(TRAIN_PER_FORWARD * analytic * batch_size), 'analytic'


def compile_train_step(config, batch_size: int, device=None, count_flops: bool = True) -> Compiled:
  """`make_train_step` of `config` on a one-`device` mesh (default: the first), lowered and
  compiled for batches of `batch_size`; the state initialised on that device; train_flops None
  unless `count_flops`."""
  built, batch = _train_step(config, batch_size, device)
  state = built.exp.make_state()
  start = time.perf_counter()
  compiled = built.run.lower(state, batch).compile()
  compile_s = time.perf_counter() - start
  train_flops, source = model_train_flops(config, batch_size) if count_flops else (None, None)
  return Compiled(compiled, state, batch, compile_s, train_flops, compiled.memory_analysis(),
                  source)


def run_step(compiled: Compiled):
  """One train step on the compiled state (kept for the next), waited for."""
  compiled.state, metrics = compiled.run(compiled.state, compiled.batch)
  jax.block_until_ready((compiled.state, metrics))


def time_calls(fn, calls: int) -> list[float]:
  """Seconds of each of `calls` calls of `fn()` (which must wait for its work)."""
  times = []
  for _ in range(calls):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return times


def memory_bytes(memory) -> int | None:
  """Arguments + outputs + temporaries - aliased (donated) bytes of a compiled step."""
  if memory is None:
    return None
  return int(memory.argument_size_in_bytes + memory.output_size_in_bytes
             + memory.temp_size_in_bytes - memory.alias_size_in_bytes)


def peak_device_bytes(device=None) -> int | None:
  """`memory_stats()['peak_bytes_in_use']` of the device (since the process started), or None
  where the backend keeps no statistics (CPU)."""
  stats = (device or jax.devices()[0]).memory_stats()
  return int(stats['peak_bytes_in_use']) if stats and 'peak_bytes_in_use' in stats else None


def matmul_flops_per_s(dtype, size: int, repeats: int = 10) -> float:
  """FLOP/s of the fastest of `repeats` jitted (size, size) @ (size, size) products in `dtype`."""
  a, b = (jax.random.normal(jax.random.key(i), (size, size), dtype) for i in range(2))
  matmul = jax.jit(jnp.matmul)
  jax.block_until_ready(matmul(a, b))
  best = float('inf')
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(matmul(a, b))
    best = min(best, time.perf_counter() - start)
  return 2 * size ** 3 / best


def summary(config, compiled: Compiled, times: list[float]) -> dict:
  """Our numbers for `config` from its compiled step and step `times`: params, GFLOPs per clip
  (train step and forward: XLA's CPU cost analysis, else analytic; `flops_source` says which),
  compile s, median and fastest step ms, clips/s, train FLOP/s, memory."""
  batch_size = compiled.batch['video'].shape[0]
  step_s = statistics.median(times)
  shape = clip_shape(config)
  forward_flops, forward_source = flops.forward_flops(config.model, shape)
  return dict(
      params=flops.param_count(config.model, shape),
      gflops_train_per_clip=compiled.train_flops / batch_size / 1e9,
      gflops_forward_per_clip=forward_flops / 1e9,
      flops_source=dict(train=compiled.flops_source, forward=forward_source),
      compile_s=compiled.compile_s, step_ms=step_s * 1e3, fastest_step_ms=min(times) * 1e3,
      clips_per_s=batch_size / step_s, train_flops_per_s=compiled.train_flops / step_s,
      compiled_memory_bytes=memory_bytes(compiled.memory), peak_device_bytes=peak_device_bytes())


def is_oom(error: Exception) -> bool:
  return any(marker in str(error) for marker in OOM_MARKERS)


def fits(config, batch_size: int) -> bool:
  """Whether a train step of `config` at `batch_size` compiles and runs (False on an XLA
  RESOURCE_EXHAUSTED / out-of-memory error; other errors propagate)."""
  try:
    compiled = compile_train_step(config, batch_size, count_flops=False)
    run_step(compiled)
    return True
  except Exception as error:  # pylint: disable=broad-except
    if not is_oom(error):
      raise
    return False
  finally:
    compiled = None
    gc.collect()


def compiled_bytes(config, batch_size: int, device=None) -> int | None:
  """memory_bytes of the train step of `config` compiled (not run) for `batch_size`."""
  built, batch = _train_step(config, batch_size, device)
  return memory_bytes(built.run.lower(built.exp.abstract_state, batch).compile().memory_analysis())


def device_capacity(device=None) -> int | None:
  """The bytes the device lets JAX allocate (`memory_stats()['bytes_limit']`), None on CPU."""
  stats = (device or jax.devices()[0]).memory_stats()
  return int(stats['bytes_limit']) if stats and 'bytes_limit' in stats else None


def predict_largest_batch(bytes_at, capacity: int, batches=(2, 4)) -> dict:
  """The largest batch whose compiled bytes fit in `capacity`, from `bytes_at(b)` at two
  `batches` taken as linear in the batch (fixed bytes: state and program; per-clip bytes:
  activations): {'predicted', 'fixed_bytes', 'per_clip_bytes'}."""
  (b0, b1), (m0, m1) = batches, [bytes_at(b) for b in batches]
  per_clip = max((m1 - m0) / (b1 - b0), 1.0)
  fixed = m0 - per_clip * b0
  return dict(predicted=max(0, int((capacity - fixed) // per_clip)), fixed_bytes=int(fixed),
              per_clip_bytes=int(per_clip))


def largest_batch(fits_at, limit: int = 4096, start: int = 1, growth: float = 2.0,
                  tolerance: float = 0.0) -> tuple[int, int | None]:
  """(good, bad): good the largest batch <= `limit` found with `fits_at(good)` (0 if not even
  1 fits), bad the smallest tried that does not fit (None if none). From `start`, multiplies by
  `growth` while batches fit (divides while they do not), then bisects until bad - good <=
  max(1, tolerance * good); assumes that what fits at b fits below b."""
  good, bad = 0, None
  b = min(max(start, 1), limit)
  if fits_at(b):
    good = b
    while good < limit:
      b = min(limit, max(good + 1, math.ceil(good * growth)))
      if not fits_at(b):
        bad = b
        break
      good = b
  else:
    bad = b
    while bad > 1:
      b = min(bad - 1, max(1, math.floor(bad / growth)))
      if fits_at(b):
        good = b
        break
      bad = b
  while bad is not None and bad - good > max(1, tolerance * good):
    middle = (good + bad) // 2
    good, bad = (middle, bad) if fits_at(middle) else (good, middle)
  return good, bad
