"""Optimizer options: layer-wise learning-rate decay."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from tests.helpers import load_config
from vivit_jax import models
from vivit_jax.models import scan
from vivit_jax.train import optim, validate


def _params(num_layers: int = 3):
  """Random params of a tiny VideoMAE classifier (embedding, encoder/block_i, fc_norm, head)."""
  model = models.build(ml_collections.ConfigDict(dict(
      name='videomae', num_classes=5, patch_size=4, tubelet_size=2, hidden_size=16,
      num_layers=num_layers, num_heads=2, mlp_dim=32)))
  shapes = nn.unbox(jax.eval_shape(lambda: model.init(
      jax.random.key(0), jnp.zeros((1, 2, 8, 8, 3)), train=False))['params'])
  rng = np.random.default_rng(0)
  return jax.tree.map(lambda s: jnp.asarray(rng.normal(size=s.shape), jnp.float32), shapes)


def test_layer_ids():
  ids, num_layers = optim.layer_ids(_params(3))
  assert num_layers == 3
  assert ids['embedding']['proj']['kernel'] == 0
  assert [ids['encoder'][f'block_{i}']['mlp']['fc1']['kernel'] for i in range(3)] == [1, 2, 3]
  assert ids['fc_norm']['scale'] == ids['head']['kernel'] == 4


@pytest.mark.parametrize('name', ['adamw', 'sgd'])
def test_layer_decay_scales_each_update_by_its_depth(name):
  params = _params(3)
  grads = jax.tree.map(lambda p: jnp.sin(p * 3.0), params)
  opt = load_config().optimizer
  opt.update(name=name, warmup_steps=0, learning_rate=0.1, weight_decay=0.05, grad_clip_norm=1e9)

  def first_update(decay):
    opt.layer_decay = decay
    tx, _ = optim.make_optimizer(opt, num_steps=10)
    return tx.update(grads, tx.init(params), params)[0]

  plain, decayed = first_update(1.0), first_update(0.5)
  ids, _ = optim.layer_ids(params)
  for u, d, i in zip(jax.tree.leaves(plain), jax.tree.leaves(decayed), jax.tree.leaves(ids)):
    assert np.abs(u).max() > 0
    np.testing.assert_allclose(d, u * 0.5 ** (4 - i), rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize('name', ['adamw', 'sgd'])
def test_scanned_params_get_the_unrolled_updates(name):
  """Layer decay and the weight-decay mask act per layer along a scanned `blocks` axis."""
  params = _params(3)
  grads = jax.tree.map(lambda p: jnp.sin(p * 3.0), params)
  opt = load_config().optimizer
  opt.update(name=name, warmup_steps=0, learning_rate=0.1, weight_decay=0.5, grad_clip_norm=1e9,
             layer_decay=0.5)
  tx, _ = optim.make_optimizer(opt, num_steps=10)
  unrolled = tx.update(grads, tx.init(params), params)[0]
  stacked_params, stacked_grads = scan.stack(params), scan.stack(grads)
  assert stacked_params['encoder']['blocks']['mlp']['fc1']['bias'].shape == (3, 32)
  stacked = tx.update(stacked_grads, tx.init(stacked_params), stacked_params)[0]
  ids, num_layers = optim.layer_ids(stacked_params)
  assert num_layers == 3
  assert ids['encoder']['blocks']['mlp']['fc1']['kernel'].ravel().tolist() == [1, 2, 3]
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-12),
               scan.unstack(jax.device_get(stacked)), jax.device_get(unrolled))


def test_layer_decay_errors():
  config = load_config()
  config.optimizer.layer_decay = 1.5
  with pytest.raises(ValueError, match=r'config.optimizer.layer_decay=1.5 is invalid: .*\(0, 1\]'):
    validate.validate(config)
  opt = config.optimizer
  opt.layer_decay = 0.5
  tx, _ = optim.make_optimizer(opt, 10)
  params = {'conv': {'kernel': jnp.ones((2, 2))}}
  with pytest.raises(ValueError, match='needs a model with encoder/spatial_encoder/block_i'):
    tx.update(params, tx.init(params), params)


def test_warmup_longer_than_the_run_warns(caplog):
  opt = load_config().optimizer
  opt.warmup_steps = 60
  optim.make_schedule(opt, 100)
  assert not caplog.records
  optim.make_schedule(opt, 40)
  assert 'warmup_steps=60 >= config.train.num_steps=40' in caplog.text
  assert '--config.optimizer.warmup_steps=4' in caplog.text
