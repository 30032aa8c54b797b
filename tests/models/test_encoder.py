"""The transformer encoder: one block description shared by ViViT, TimeSformer and VideoMAE,
drop-path rates, remat and scan_layers."""
import dataclasses
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from tests.helpers import (assert_remat_keeps_loss_and_gradients, assert_scan_equals_unrolled,
                           loss_and_grads)
from vivit_jax import models
from vivit_jax.models import encoder, layers

SPEC = encoder.BlockSpec(num_heads=2, mlp_dim=16, dropout_rate=0.1, attention_impl='xla')


def drop_path_rates(module: nn.Module, x: jax.Array) -> list:
  """The DropPath rates `module` creates on tokens x (B, N, D), in call order."""
  rates = []

  def record(next_fun, args, kwargs, context):
    if isinstance(context.module, layers.DropPath):
      rates.append(context.module.rate)
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(record):
    jax.eval_shape(lambda: module.init(jax.random.key(0), x, train=False))
  return rates


def test_encoder_drop_path_rates_are_linear():
  module = encoder.Encoder(spec=SPEC, num_layers=3, stochastic_depth=0.2)
  np.testing.assert_allclose(drop_path_rates(module, jnp.ones((2, 3, 8))),
                             [0.0, 0.0, 0.1, 0.1, 0.2, 0.2])


def _encoder(**fields):
  """2 blocks with drop path (rng 'drop_path' under remat and scan) and no dropout, which would
  double the compile time."""
  return encoder.Encoder(spec=dataclasses.replace(SPEC, dropout_rate=0.0), num_layers=2,
                         stochastic_depth=0.2, **fields)


def _tokens():
  return jnp.asarray(np.random.default_rng(0).normal(size=(2, 4, 8)), jnp.float32)


def test_remat_keeps_loss_and_gradients_and_changes_the_program():
  x = _tokens()
  params = nn.unbox(_encoder().init(jax.random.key(0), x, train=False))['params']
  assert_remat_keeps_loss_and_gradients(_encoder, params, x)
  barriers = {}
  for remat in ('none', 'full'):
    module = _encoder(remat=remat)
    hlo = jax.jit(jax.grad(lambda p: jnp.sum(module.apply({'params': p}, x, train=False)))
                  ).lower(params).as_text()
    barriers[remat] = hlo.count('opt-barrier') + hlo.count('optimization_barrier')
  assert barriers['none'] == 0 < barriers['full']  # Remat's recompute barriers.


def test_scanned_encoder_equals_unrolled():
  x = _tokens()
  params = nn.unbox(_encoder().init(jax.random.key(0), x, train=False))['params']
  build = functools.partial(_encoder, remat='dots')
  stacked = assert_scan_equals_unrolled(build, params, x)
  assert stacked['blocks']['mlp']['fc1']['kernel'].shape == (2, 8, 16)
  # Training: same stochastic-depth rates per layer (the drop pattern itself may differ).
  loss, _ = loss_and_grads(build(scan_layers=True), stacked, x)
  assert np.isfinite(loss)


# The tiny config.model of each transformer on (2, 4, 16, 16, 3) videos.
COMMON = dict(hidden_size=32, num_layers=2, num_heads=4, mlp_dim=64, layer_norm_eps=1e-5,
              hidden_act='quick_gelu', attention_impl='xla', dropout_rate=0.1)
MODELS = {
    'vivit': dict(variant='factorised_self_attention', num_classes=3, patch_size=(2, 4, 4),
                  classifier='gap'),
    'timesformer': dict(num_classes=3, num_frames=4, image_size=16, patch_size=4),
    'videomae': dict(num_classes=3, patch_size=4, tubelet_size=2),
    'videomae_pretrain': dict(patch_size=4, tubelet_size=2, decoder_hidden_size=16,
                              decoder_num_layers=1, decoder_num_heads=2, decoder_mlp_dim=32,
                              mask_ratio=0.5),
}


def _block_specs(name: str, **fields) -> dict:
  """{EncoderBlock path: its BlockSpec} of the model `name` built from COMMON and `fields`."""
  model = models.build(ml_collections.ConfigDict(dict(COMMON, name=name, **MODELS[name],
                                                      **fields)))
  specs = {}

  def record(next_fun, args, kwargs, context):
    if isinstance(context.module, encoder.EncoderBlock):
      specs['/'.join(context.module.scope.path)] = context.module.spec
    return next_fun(*args, **kwargs)

  video = jnp.zeros((2, 4, 16, 16, 3))
  with nn.intercept_methods(record):
    jax.eval_shape(lambda: model.init({'params': jax.random.key(0), 'masking': jax.random.key(1)},
                                      video, train=False))
  return specs


@pytest.mark.parametrize('name', list(MODELS))
def test_models_describe_their_blocks_by_one_spec(name):
  """Every block of the three families is an EncoderBlock whose BlockSpec carries the model's
  fields (VideoMAE's decoder: its own sizes, no dropout); qkv_bias defaults to the family's."""
  specs = _block_specs(name)
  expected = encoder.BlockSpec(num_heads=4, mlp_dim=64, dropout_rate=0.1, attention_impl='xla',
                               layer_norm_eps=1e-5, hidden_act='quick_gelu',
                               qkv_bias='qv' if name.startswith('videomae') else 'qkv')
  assert {path: spec for path, spec in specs.items() if path.startswith('encoder/')} == {
      'encoder/block_0': expected, 'encoder/block_1': expected}
  decoder = [spec for path, spec in specs.items() if path.startswith('decoder/')]
  assert decoder == ([encoder.BlockSpec(num_heads=2, mlp_dim=32, attention_impl='xla',
                                        layer_norm_eps=1e-5, hidden_act='quick_gelu',
                                        qkv_bias='qv')] if name == 'videomae_pretrain' else [])
  none = _block_specs(name, qkv_bias='none')
  assert {spec.qkv_bias for spec in none.values()} == {'none'}


@pytest.mark.parametrize('name', list(MODELS))
def test_qkv_bias_is_one_of_the_spellings(name):
  with pytest.raises(ValueError, match=r"qkv_bias='True'.*supported: qkv, qv, none"):
    models.build(ml_collections.ConfigDict(dict(COMMON, name=name, **MODELS[name],
                                                qkv_bias=True)))


def test_unknown_factorisation_raises():
  block = encoder.EncoderBlock(spec=SPEC, factorisation='axial')
  with pytest.raises(ValueError, match="factorisation='axial'"):
    block.init(jax.random.key(0), _tokens(), train=False)
