"""The one train step (and eval step) shared by every model and task."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from vivit_jax import models
from vivit_jax.models import attention
from vivit_jax.train import tasks
from vivit_jax.train.state import TrainState

# Bits of the step's `faults` metric: what went non-finite.
NON_FINITE_LOSS, NON_FINITE_GRADS, NON_FINITE_UPDATE = 1, 2, 4


def all_finite(tree) -> jax.Array:
  """True iff every floating-point leaf of `tree` is finite: one fused scalar (x * 0 is 0 for
  finite x, NaN for inf and NaN), in float32 so float16 leaves cannot overflow the sum."""
  leaves = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(jnp.result_type(x), jnp.floating)]
  return jnp.isfinite(sum((jnp.sum(x.astype(jnp.float32) * 0) for x in leaves),
                          jnp.float32(0)))


class RetraceError(RuntimeError):
  """The train step was traced (and compiled) again after its first call."""


def _shapes(batch) -> dict:
  return jax.tree.map(lambda x: (x.shape, x.dtype), batch)


def variables(params, batch_stats) -> dict:
  """`model.apply`'s variables: params, and batch_stats when the model has them."""
  return {'params': params, **({'batch_stats': batch_stats} if batch_stats else {})}


def _model_kwargs(model: nn.Module, task, batch) -> dict:
  """Keyword arguments of `model.apply` besides the video: the task's (`tasks.model_kwargs`),
  and the batch's entries the model takes (`models.extra_inputs`, e.g. two_stream's 'flow');
  other keys are ignored."""
  return {**tasks.model_kwargs(task, batch), **{k: batch[k] for k in models.extra_inputs(model)}}


def train_rngs(model: nn.Module, seed: int, step_number) -> tuple[dict, jax.Array]:
  """(the model's `rngs` for the update of `step_number` (its models.rng_streams), the key of
  `task.prepare`): one key per stream of models.RNG_STREAMS and one for the task, from `seed`."""
  rng = jax.random.fold_in(jax.random.key(seed + 1), step_number)
  *keys, augment = jax.random.split(rng, len(models.RNG_STREAMS) + 1)
  streams = models.rng_streams(model)
  return {n: k for n, k in zip(models.RNG_STREAMS, keys) if n in streams}, augment


def make_train_step(model: nn.Module, task, tx: optax.GradientTransformation, schedule, *,
                    mesh, rules, state_shardings, batch_sharding, seed: int):
  """Returns jitted `(state, batch) -> (state, metrics)`; the state is donated.

  The batch is {'video': (B, T, H, W, C), 'label': (B,), ...} sharded by `batch_sharding`; the
  task augments it (`task.prepare`), adds model arguments and computes the loss; batch entries
  the model takes by keyword (e.g. 'flow') are passed on.
  A step whose loss, gradients, updated parameters or optimizer state are not finite leaves the
  state untouched and reports `finite = 0` and which went non-finite in `faults`
  (NON_FINITE_* bits), so the loop can stop with the last good state.
  The step compiles once: a call that traces it again (another batch shape or dtype, a state
  whose structure, dtypes or shardings changed) raises RetraceError.
  """
  def step(state: TrainState, batch):
    rngs, augment = train_rngs(model, seed, state.step)
    batch = task.prepare(batch, augment)

    def loss_fn(params):
      outputs, mutated = model.apply(variables(params, state.batch_stats), batch['video'],
                                     train=True, rngs=rngs, mutable=['batch_stats'],
                                     **_model_kwargs(model, task, batch))
      loss, metrics = task.loss(outputs, batch)
      return loss, (metrics, mutated.get('batch_stats', state.batch_stats))

    (loss, (metrics, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    candidate = TrainState(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                           batch_stats=batch_stats, opt_state=opt_state)
    grad_norm = optax.tree.norm(grads)
    # One fused scalar per part, no per-leaf select (a per-leaf test chained into each leaf's
    # select made XLA:CPU compile leaves x leaves: SlowFast, 330 leaves, ~100 s). The gradient
    # norm is finite iff every gradient is (short of overflowing float32, where global-norm
    # clipping fails too); `all_finite` covers the updated parameters and optimizer state.
    faults = (NON_FINITE_LOSS * ~jnp.isfinite(loss) + NON_FINITE_GRADS * ~jnp.isfinite(grad_norm)
              + NON_FINITE_UPDATE * ~all_finite((candidate.params, candidate.opt_state)))
    finite = faults == 0
    new_state = jax.tree.map(lambda new, old: jnp.where(finite, new, old), candidate, state)
    metrics = dict(metrics, grad_norm=grad_norm, lr=schedule(state.step),
                   finite=finite.astype(jnp.float32), faults=faults.astype(jnp.int32))
    return new_state, metrics

  replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  jitted = jax.jit(step, in_shardings=(state_shardings, batch_sharding),
                   out_shardings=(state_shardings, replicated), donate_argnums=0)
  with_rules = _with_rules(jitted, mesh, rules)
  first_batch = []  # The shapes and dtypes of the first call's batch, for the error.
  # pylint: disable=protected-access
  num_traces = jitted._cache_size  # Compiled variants: each call that traced added one.

  def compiled_once(state, batch):
    out = with_rules(state, batch)
    if not first_batch:
      first_batch.append(_shapes(batch))
    if num_traces() > 1:
      raise RetraceError(f'The train step was traced {num_traces()} times; it must compile '
                         f'once. Batch shapes first {first_batch[0]}, now {_shapes(batch)}: '
                         f'keep the batch shapes and dtypes fixed (drop_remainder) and the state '
                         f'as the step returns it.')
    return out

  compiled_once.lower = with_rules.lower  # AOT lowering (tools/benchmarks/compile_only).
  compiled_once.num_traces = num_traces  # 1 after any number of steps.
  return compiled_once


def make_eval_step(model: nn.Module, task, *, mesh, rules, state_shardings, batch_sharding):
  """Returns jitted `(state, batch) -> task.eval_outputs`, replicated to every process."""

  def step(state: TrainState, batch):
    outputs = model.apply(variables(state.params, state.batch_stats), batch['video'],
                          train=False, rngs=models.eval_rngs(model),
                          **_model_kwargs(model, task, batch))
    return task.eval_outputs(outputs, batch)

  replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  jitted = jax.jit(step, in_shardings=(state_shardings, batch_sharding),
                   out_shardings=replicated)
  return _with_rules(jitted, mesh, rules)


def _with_rules(fn, mesh, rules):
  """Calls `fn` under the mesh, its logical-axis rules and the attention kernels of the mesh's
  platform (all needed when it traces). `.lower(*args, lowering_platforms=None)` lowers it
  likewise, or for other platforms, e.g. ('tpu',) from a CPU host, with their kernels (compile
  times, cost analysis, deviceless checks)."""
  mesh_platform = attention.platform_of(mesh.devices)

  def wrapped(*args):
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules), attention.compiling_for(mesh_platform):
      return fn(*args)

  def lower(*args, lowering_platforms=None):
    platform = lowering_platforms[0] if lowering_platforms else mesh_platform
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules), attention.compiling_for(platform):
      return fn.trace(*args).lower(lowering_platforms=lowering_platforms)

  wrapped.lower = lower
  return wrapped
