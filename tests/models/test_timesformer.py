"""TimeSformer: registry build, shapes, sharding names, the image-ViT limit on static video, remat
and scan_layers."""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from jax.sharding import AxisType, PartitionSpec

from tests.helpers import (assert_remat_keeps_loss_and_gradients, assert_scan_equals_unrolled,
                           load_config, tiny_config)
from tests.models.test_layers import random_variables
from vivit_jax import models

NUM_CLASSES, WIDTH = 10, 32


def _config(**overrides) -> ml_collections.ConfigDict:
  """The tiny test model's fields as a TimeSformer on 4 x 16 x 16 clips with 4 x 4 patches."""
  fields = tiny_config().model.to_dict()
  for field in ('variant', 'classifier', 'patch_size'):
    del fields[field]
  fields.update(name='timesformer', num_frames=4, image_size=16, patch_size=4,
                stochastic_depth=0.0)
  return ml_collections.ConfigDict(dict(fields, **overrides))


def _video(num_frames: int = 4, seed: int = 0, batch: int = 2):
  return jnp.asarray(np.random.default_rng(seed).normal(size=(batch, num_frames, 16, 16, 3)),
                     jnp.float32)


def _apply(model, variables, video):
  """`model.apply` at eval, jitted: compiling once beats running op by op on CPU."""
  return jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, video)


def _abstract_init(model, video):
  return jax.eval_shape(lambda: model.init(jax.random.key(0), video, train=False))


def test_output_shape_dtypes_and_init():
  model = models.build(_config(dtype='bfloat16', num_layers=1))
  params = nn.unbox(jax.jit(lambda: model.init(jax.random.key(0), _video(), train=False))())
  params = params['params']
  assert {p.dtype for p in jax.tree.leaves(params)} == {jnp.dtype(jnp.float32)}
  block = params['encoder']['block_0']
  for zero in (params['head'], params['time_embedding'], block['temporal_dense']):
    assert not any(np.any(p) for p in jax.tree.leaves(zero))
  assert np.any(block['temporal_attn']['out']['kernel'])  # Only temporal_dense starts at zero.
  variables = random_variables(model, _video(), train=False, seed=0)
  logits = _apply(model, variables, _video())
  assert logits.shape == (2, NUM_CLASSES) and logits.dtype == jnp.float32
  reference = _apply(models.build(_config(num_layers=1)), variables, _video())
  assert np.abs(reference).max() > 0.1
  np.testing.assert_allclose(logits, reference, atol=0.1 * np.abs(reference).max())


def test_features_without_classes():
  model = models.build(_config(num_classes=0))
  features = _apply(model, random_variables(model, _video(), train=False, seed=0), _video())
  assert features.shape == (2, WIDTH) and features.dtype == jnp.float32


def test_parameters_are_logically_partitioned():
  abstract = _abstract_init(models.build(_config(qkv_bias='none')), _video())
  leaves = jax.tree.leaves(abstract, is_leaf=lambda x: isinstance(x, nn.Partitioned))
  assert leaves and all(isinstance(p, nn.Partitioned) for p in leaves)
  assert all(len(p.names) == p.value.ndim for p in leaves)
  specs = nn.get_partition_spec(abstract)['params']
  block = specs['encoder']['block_0']
  assert block['temporal_attn']['query'] == {'kernel': PartitionSpec('embed', 'heads', 'kv')}
  assert block['temporal_dense']['kernel'] == PartitionSpec(None, 'embed')
  assert block['mlp']['fc1']['kernel'] == PartitionSpec('embed', 'mlp')
  assert specs['time_embedding'] == PartitionSpec(None, None, 'embed')
  assert specs['head']['kernel'] == PartitionSpec('embed', 'classes')


def test_sharded_matches_unsharded():
  """Params and activations sharded over a 2x2x2 (data, fsdp, model) mesh: same logits."""
  model, video = models.build(_config()), _video(batch=4)
  variables = random_variables(model, video, train=False, seed=0)
  mesh = jax.make_mesh((2, 2, 2), ('data', 'fsdp', 'model'), axis_types=(AxisType.Auto,) * 3)
  rules = load_config().sharding_rules
  shardings = nn.logical_to_mesh_sharding(nn.get_partition_spec(_abstract_init(model, video)),
                                          mesh, rules)
  with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
    logits = _apply(model, jax.device_put(variables, shardings), video)
  np.testing.assert_allclose(logits, _apply(model, variables, video),
                             rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('num_frames', [1, 4])
def test_static_video_with_zero_temporal_path_equals_image_vit(num_frames):
  """Zero time embedding and temporal_dense: a video of one repeated image gives the logits of
  the image ViT (ViViT with 1 x 4 x 4 tubelets on that image) holding the spatial weights."""
  model = models.build(_config(num_frames=num_frames))
  video = jnp.repeat(_video(num_frames=1), num_frames, axis=1)
  params = random_variables(model, video, train=False, seed=1)['params']
  vit_config = tiny_config().model
  vit_config.update(patch_size=(1, 4, 4), stochastic_depth=0.0)
  vit_params = {k: params[k] for k in ('cls', 'pos_embedding', 'head')}
  vit_params['embedding'] = {'proj': dict(params['embedding']['proj'],
                                          kernel=params['embedding']['proj']['kernel'][None])}
  vit_params['encoder'] = {f'block_{i}': {k: params['encoder'][f'block_{i}'][k]
                                          for k in ('norm_attn', 'attn', 'norm_mlp', 'mlp')}
                           for i in range(2)}
  vit_params['encoder']['norm'] = params['encoder']['norm']
  vit_logits = _apply(models.build(vit_config), {'params': vit_params}, video[:, :1])
  assert np.abs(vit_logits).max() > 0.1
  run = jax.jit(lambda p: model.apply({'params': p}, video, train=False))
  assert np.abs(run(params) - vit_logits).max() > 1e-2  # The random temporal path matters...
  zero = jax.tree.map(jnp.zeros_like, params['encoder'])
  params['time_embedding'] = jnp.zeros_like(params['time_embedding'])
  for i in range(2):
    params['encoder'][f'block_{i}']['temporal_dense'] = zero[f'block_{i}']['temporal_dense']
  np.testing.assert_allclose(run(params), vit_logits, rtol=1e-5, atol=1e-5)  # ...zeroed, none.


def test_train_mode_uses_rng_streams():
  model = models.build(_config(num_layers=1, dropout_rate=0.1, attention_dropout_rate=0.1,
                               stochastic_depth=0.5))
  video = _video()
  variables = random_variables(model, video, train=False, seed=0)
  run = jax.jit(lambda seed: model.apply(variables, video, train=True,
                                         rngs={'dropout': jax.random.key(seed),
                                               'drop_path': jax.random.key(seed + 1)}))
  assert np.abs(run(0) - run(2)).max() > 1e-3
  np.testing.assert_array_equal(run(0), run(0))


def _model(**overrides):
  return models.build(_config(**overrides))


def test_remat_keeps_loss_and_gradients():
  build = functools.partial(_model, stochastic_depth=0.2)
  video = _video()
  params = random_variables(build(), video, train=False, seed=0)['params']
  assert_remat_keeps_loss_and_gradients(build, params, video)


def test_scanned_layers_equal_unrolled():
  video = _video()
  params = random_variables(_model(), video, train=False, seed=0)['params']
  stacked = assert_scan_equals_unrolled(_model, params, video)
  assert stacked['encoder']['blocks']['temporal_dense']['kernel'].shape == (2, WIDTH, WIDTH)


def test_bad_config_and_input_raise():
  with pytest.raises(ValueError, match="hidden_act='tanh'.*supported: gelu"):
    models.build(_config(hidden_act='tanh'))
  with pytest.raises(ValueError, match='num_frames=4'):
    models.build(_config()).init(jax.random.key(0), _video(num_frames=2), train=False)
