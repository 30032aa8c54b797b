"""The one train step gives the same numbers on 1 device and on 8 (data parallel, FSDP, tensor
parallel, all three); it compiles once, donates the state and keeps float32 master params under
bfloat16 compute."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from tests.helpers import random_batches, tiny_config
from vivit_jax import models
from vivit_jax.models import encoder
from vivit_jax.train import loop, sharding, step


def _setup(config, devices):
  """(initial state, train step, batch sharding) of `config` on `devices`."""
  ds = config.dataset
  exp = loop.plan(config, sharding.make_mesh(config.mesh, devices),
                  (len(devices), ds.num_frames, ds.crop_size, ds.crop_size, 3))
  return exp.make_state(), exp.train_step(), exp.batch_sharding


def _train(config, devices, batches):
  """Runs the train step over `batches`; returns (losses, final params, state)."""
  state, train_step, batch_sharding = _setup(config, devices)
  losses = []
  for batch in batches:
    state, metrics = train_step(state, sharding.put_batch(batch, batch_sharding))
    losses.append(float(metrics['loss_sum'] / metrics['count']))
  return np.array(losses), jax.device_get(state.params), state


@pytest.fixture(scope='module')
def reference():
  config = tiny_config()
  # Adam divides by sqrt(v) + eps: with the default eps=1e-8, a gradient entry that is ~0
  # turns float32 summation-order noise (which differs between layouts) into a full-size
  # step. A larger eps keeps the comparison about sharding, not about that amplification.
  config.optimizer.eps = 1e-3
  batches = random_batches(config, 3)
  return config, batches, _train(config, jax.devices()[:1], batches)


@pytest.mark.parametrize('mesh', [dict(data=8, fsdp=1, model=1), dict(data=1, fsdp=8, model=1),
                                  dict(data=2, fsdp=1, model=4), dict(data=2, fsdp=2, model=2)])
def test_sharded_steps_match_one_device(reference, mesh):
  config, batches, (losses_1, params_1, _) = reference
  config.mesh.update(mesh)
  losses_8, params_8, state = _train(config, jax.devices()[:8], batches)
  assert losses_1[-1] < losses_1[0] or not np.allclose(losses_1[0], losses_1[-1])
  np.testing.assert_allclose(losses_8, losses_1, atol=1e-5, rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-4),
               params_8, params_1)
  # Parameters are split across devices exactly when the mesh has fsdp or model axes.
  split = [x.sharding.shard_shape(x.shape) != x.shape for x in jax.tree.leaves(state.params)]
  assert any(split) == (mesh['fsdp'] * mesh['model'] > 1)


def test_non_finite_step_leaves_state_unchanged(reference):
  config, batches, _ = reference
  config.mesh.update(data=8, fsdp=1, model=1)
  bad = dict(batches[0], video=np.full_like(batches[0]['video'], np.nan))
  _, params_before, _ = _train(config, jax.devices()[:8], batches[:1])
  losses, params_after, state = _train(config, jax.devices()[:8], [batches[0], bad])
  assert int(state.step) == 1
  assert np.isnan(losses[1])
  jax.tree.map(np.testing.assert_array_equal, params_after, params_before)


@pytest.mark.slow
def test_batch_norm_statistics_are_those_of_the_global_batch():
  """A BatchNorm net split over 8 devices (2 clips each) keeps the running statistics of the
  whole batch of 16, as on one device: statistics are averaged across the data axis."""
  config = tiny_config()
  config.model = ml_collections.ConfigDict(dict(name='resnet3d', num_classes=10, depth=10,
                                                base_width=2))
  config.optimizer.eps = 1e-3
  batches = random_batches(config, 2)
  for batch in batches:  # Per-device batches that differ, so per-device statistics would too.
    batch['video'] += np.arange(16, dtype=np.float32)[:, None, None, None, None] / 4
  config.mesh.update(data=1, fsdp=1, model=1)
  losses_1, _, state_1 = _train(config, jax.devices()[:1], batches)
  config.mesh.update(data=8)
  losses_8, _, state_8 = _train(config, jax.devices()[:8], batches)
  np.testing.assert_allclose(losses_8, losses_1, rtol=1e-5)
  stats_1, stats_8 = jax.device_get(state_1.batch_stats), jax.device_get(state_8.batch_stats)
  assert jax.tree.leaves(stats_1)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-4), stats_8,
               stats_1)
  # Sanity: the stem's running mean moved off its initial zeros.
  assert np.abs(stats_1['stem_bn']['mean']).max() > 1e-3


def test_step_compiles_once_and_donates_the_state(reference):
  config, batches, _ = reference
  config.mesh.update(data=8, fsdp=1, model=1)
  state, train_step, batch_sharding = _setup(config, jax.devices()[:8])
  for i in range(5):
    leaves = jax.tree.leaves(state)
    state, _ = train_step(state, sharding.put_batch(batches[i % 3], batch_sharding))
    assert all(x.is_deleted() for x in leaves)  # Donated: the step reused their buffers.
  assert int(state.step) == 5
  smaller = {k: v[:8] for k, v in batches[0].items()}
  with pytest.raises(step.RetraceError, match='traced 2 times'):
    train_step(state, sharding.put_batch(smaller, batch_sharding))


def _block_output_dtypes(model, params, video):
  """The dtypes of every EncoderBlock output, and the logits, of `model` on `video`."""
  dtypes = []

  def record(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    if isinstance(context.module, encoder.EncoderBlock):
      dtypes.append(out.dtype)
    return out

  with nn.intercept_methods(record):
    logits = model.apply({'params': params}, video, train=False)
  return dtypes, logits


def test_bfloat16_compute_keeps_float32_params(reference):
  """dtype='bfloat16': activations bfloat16, logits and master params float32, the loss close to
  float32's."""
  config, batches, (losses_32, _, _) = reference
  config = config.copy_and_resolve_references()
  config.model.dtype = 'bfloat16'
  config.mesh.update(data=1, fsdp=1, model=1)
  losses_16, params, _ = _train(config, jax.devices()[:1], batches)
  assert {x.dtype for x in jax.tree.leaves(params)} == {np.dtype(np.float32)}
  np.testing.assert_allclose(losses_16, losses_32, rtol=0.02)
  dtypes, logits = _block_output_dtypes(models.build(config.model), params,
                                        jnp.asarray(batches[0]['video'][:2]))
  assert dtypes and set(dtypes) == {jnp.dtype(jnp.bfloat16)}
  assert logits.dtype == jnp.float32


def test_all_finite_is_one_scalar_over_every_float_leaf():
  assert bool(step.all_finite({'a': jnp.ones(3), 'n': jnp.int32(7)}))
  assert not bool(step.all_finite({'a': jnp.ones(3), 'b': jnp.array([1.0, jnp.nan])}))
  assert not bool(step.all_finite([jnp.array([jnp.inf], jnp.bfloat16)]))
  big = jnp.full((4,), 6e4, jnp.float16)  # Its sum overflows float16, not the float32 check.
  assert bool(step.all_finite(big))
