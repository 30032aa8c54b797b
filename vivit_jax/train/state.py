"""The train state and its sharded initialisation."""
from typing import Any

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import optax

from vivit_jax import models
from vivit_jax.train import sharding


@flax.struct.dataclass
class TrainState:
  """Everything a run carries from step to step (and checkpoints)."""
  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any


def _init_fn(model: nn.Module, tx: optax.GradientTransformation, input_shape,
             extra_input_shapes=None):
  """Returns rng -> boxed TrainState (params keep their nn.Partitioned logical names)."""
  extra = {k: jnp.zeros(s, jnp.float32) for k, s in (extra_input_shapes or {}).items()}

  streams = models.rng_streams(model)

  def init(rng):
    param_rng, *keys = jax.random.split(rng, 1 + len(models.RNG_STREAMS))
    rngs = {n: k for n, k in zip(models.RNG_STREAMS, keys) if n in streams}
    variables = model.init({'params': param_rng, **rngs}, jnp.zeros(input_shape, jnp.float32),
                           train=False, **extra)
    params = variables['params']
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      batch_stats=variables.get('batch_stats', {}), opt_state=tx.init(params))

  return init


def plan_train_state(model: nn.Module, tx: optax.GradientTransformation, input_shape, *,
                     mesh, rules, seed: int, extra_input_shapes=None):
  """The state's layout without computing it, so a checkpoint can be restored straight into it.

  Args:
    input_shape: one example batch's video shape (B, T, H, W, C).
    extra_input_shapes: the model's other inputs, keyword -> shape, e.g. {'flow': (B, T - 1, H,
      W, 2)}; zeros of these are passed to model.init.
  Returns:
    (abstract, shardings, make): `abstract` a TrainState of jax.ShapeDtypeStruct carrying the
    shardings; `make()` initialises the real state directly into them (compiled on first call).
  """
  init = _init_fn(model, tx, input_shape, extra_input_shapes)
  rng = jax.random.key(seed)
  with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
    boxed = jax.eval_shape(init, rng)
    shardings = sharding.tree_shardings(boxed, mesh, rules)
  abstract = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                          sharding.unbox_abstract(boxed), shardings)

  def make():
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
      return jax.jit(lambda r: nn.unbox(init(r)), out_shardings=shardings)(rng)

  return abstract, shardings, make

