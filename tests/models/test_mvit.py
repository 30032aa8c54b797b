"""MViT (vivit_jax/models/mvit.py), its presets (configs/mvit/k400.py) and the PyTorchVideo
converter (vivit_jax/weights/pytorchvideo/mvit.py).

Sizes are checked with jax.eval_shape (no compute) against PyTorchVideo's mvit_base_16x4 and the
papers; numerics run a small MViTv1 (widths 16-64, 4 blocks over 3 stages, 4 x 32 x 32 clips)
against create_multiscale_vision_transformers in torch; the v2 options on a small v2.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import common
from tests.helpers import (assert_same_logits, pytorchvideo_models, random_params,
                           randomised_torch, torch_logits, train_one_step)
from tests.models.test_cnn3d import _num_params
from vivit_jax import models
from vivit_jax.models import flops, mvit
from vivit_jax.weights import pytorchvideo as pytorchvideo_weights
from vivit_jax.weights.pytorchvideo import mvit as pytorchvideo_mvit

PRESET = 'configs/mvit/k400.py'
CLIP = (4, 32, 32)  # (T, H, W) of the small models: a 2 x 8 x 8 patch grid.
# A small MViTv1 as create_multiscale_vision_transformers builds it: widths 16, 32, 64.
SMALL_V1 = dict(num_classes=7, embed_dim=16, depth=4, stage_starts=(1, 3), kv_stride=(1, 4, 4),
                abs_pos_embed=True, rel_pos=False, residual_pooling=False, dim_mul_in_att=False,
                pool_q_every_block=False, pool_norm_eps=1e-5)
SMALL_V2 = dict(num_classes=7, embed_dim=16, depth=2, stage_starts=(1,), kv_stride=(1, 4, 4))
# size -> (clip, published parameters, published GFLOPs (multiply-adds) per view).
PUBLISHED = {'S': ((16, 224, 224), 34.5e6, 64e9), 'B': ((32, 224, 224), 51.2e6, 225e9),
             'B_v1': ((16, 224, 224), 36.6e6, 70.5e9)}


def _params(model, clip=CLIP) -> dict:
  return jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, *clip, 3)),
                                           train=False))['params']


def _random_torch_mvit():
  """SMALL_V1 of create_multiscale_vision_transformers, logits out, eval mode, weights
  normal(0, 0.3) (the blocks' LayerNorm scales left at 1)."""
  net = pytorchvideo_models('vision_transformers').create_multiscale_vision_transformers(
      spatial_size=CLIP[1], temporal_size=CLIP[0], depth=4, patch_embed_dim=16,
      embed_dim_mul=[[1, 2.0], [3, 2.0]], atten_head_mul=[[1, 2.0], [3, 2.0]],
      pool_q_stride_size=[[1, 1, 2, 2], [3, 1, 2, 2]], pool_kv_stride_adaptive=[1, 4, 4],
      pool_kvq_kernel=[3, 3, 3], head_num_classes=7)
  return randomised_torch(net, keep=lambda name: name.endswith(('norm1.weight', 'norm2.weight')))


def test_logits_equal_pytorchvideo():
  """create_multiscale_vision_transformers' MViTv1 (random weights, eval, float32) and ours with
  its converted state dict (CONVERTERS) give the same logits within 1e-4 and the same classes:
  q pooling at the stage starts, adaptive kv strides, width doubling in the MLP, separable
  positions, the CLS token."""
  net = _random_torch_mvit()
  state = {k: v.numpy() for k, v in net.state_dict().items()}
  model = mvit.MViT(**SMALL_V1)
  variables = pytorchvideo_weights.CONVERTERS[mvit.MViT](state, model, clip=CLIP)
  clip = np.random.default_rng(1).normal(size=(3, *CLIP, 3)).astype(np.float32)
  assert_same_logits(model, variables, clip, torch_logits(net, clip))


def test_converter_refuses_other_architectures():
  """A state dict of another depth, clip, version or architecture is refused naming its first
  tensors that do not fit."""
  state = {k: v.numpy() for k, v in _random_torch_mvit().state_dict().items()}
  with pytest.raises(ValueError, match=r"lacks \d+ tensors .* first \['blocks.4.attn.k.bias'"):
    pytorchvideo_mvit.mvit_variables(state, mvit.MViT(**dict(SMALL_V1, depth=5)), clip=CLIP)
  with pytest.raises(ValueError, match=r"no place for, first \['cls_positional_encoding.pos_em"):
    pytorchvideo_mvit.mvit_variables(state, mvit.MViT(**dict(SMALL_V1, abs_pos_embed=False)),
                                     clip=CLIP)
  with pytest.raises(ValueError, match=r"'cls_positional_encoding.pos_embed_temporal' "
                                       r"\(1, 2, 16\) gives params/pos_embedding/temporal"):
    pytorchvideo_mvit.mvit_variables(state, mvit.MViT(**SMALL_V1), clip=(8, 32, 32))
  with pytest.raises(ValueError, match=r"lacks 6 tensors .* \['blocks.0.attn.norm_q.bias'"):
    pytorchvideo_mvit.mvit_variables(state, mvit.MViT(**dict(SMALL_V1, pool_q_every_block=True)),
                                     clip=CLIP)
  x3d_state = {'blocks.0.conv.conv_t.weight': np.zeros((24, 3, 1, 3, 3))}
  with pytest.raises(ValueError, match=r"lacks 108 tensors .* first \['blocks.0.attn.k.bias'"):
    pytorchvideo_mvit.mvit_variables(x3d_state, mvit.MViT(**SMALL_V1), clip=CLIP)


@pytest.mark.parametrize('size', PUBLISHED)
def test_sizes_against_published(size):
  """Parameters of each preset's model at its clip: v1-B exactly PyTorchVideo's mvit_base_16x4
  (36,610,672), MViTv2-S/B within 0.5% of the paper; multiply-adds per view (analytic) within
  1% of the papers' GFLOPs."""
  config = common.load(f'{PRESET}:{size}')
  clip, params, gflops = PUBLISHED[size]
  ours = _num_params(_params(models.build(config.model), clip))
  assert ours == pytest.approx(params, rel=0.005)
  if size == 'B_v1':
    hub = pytorchvideo_models('hub').mvit_base_16x4(pretrained=False)
    assert ours == sum(p.numel() for p in hub.parameters())
  assert flops.analytic_flops(config.model, clip) / 2 == pytest.approx(gflops, rel=0.01)


def test_analytic_flops_do_not_exceed_xla():
  """The analytic count (matrix products, convolutions, relative positions) is at most XLA's
  count of the v2 forward pass, which adds the element-wise work (a wide-enough small model)."""
  config = common.load(f'{PRESET}:tiny').model
  config.update(embed_dim=64, num_heads=2, depth=2, stage_starts=(1,), dtype='float32')
  analytic, xla = flops.analytic_flops(config, (8, 28, 28)), flops.xla_flops(config, (8, 28, 28))
  assert analytic <= xla <= 1.1 * analytic, (analytic, xla)


def test_v2_residual_pooling_and_relative_positions():
  """A small v2 (CLS token, rel pos, residual pooling, widening in attention, q pooled in every
  block): finite logits; the loss's gradient reaches the relative-position tables of every block
  but the last (whose only output read is the CLS token's, which has no relative position); with
  residual pooling off, zeroing the tables changes the logits (they enter the attention); the
  tables are sized 2 max(q, k) - 1 per axis (block 1: queries and keys on 2x4x4 -> 3, 7, 7)."""
  model = mvit.MViT(**SMALL_V2)
  params = jax.tree.map(lambda p: p * 10, random_params(model, jnp.zeros((1, *CLIP, 3))))
  attn = params['block_1']['attn']
  assert [attn[f'rel_pos_{a}'].shape for a in 'thw'] == [(3, 16), (7, 16), (7, 16)]
  assert params['block_1']['proj']['kernel'].shape == (16, 32)
  assert 'pool_q' in params['block_0']['attn']
  clip = jnp.asarray(np.random.default_rng(0).normal(size=(2, *CLIP, 3)), jnp.float32)

  def loss(p):
    return jnp.sum(model.apply({'params': p}, clip, train=False) ** 2)
  value, grads = jax.jit(jax.value_and_grad(loss))(params)
  assert np.isfinite(float(value)) and float(value) > 0
  for i in range(SMALL_V2['depth'] - 1):  # The last block's output is read at the CLS token only.
    for axis in 'thw':
      assert np.abs(grads[f'block_{i}']['attn'][f'rel_pos_{axis}']).sum() > 0, (i, axis)
  plain = mvit.MViT(**dict(SMALL_V2, residual_pooling=False))
  forward = jax.jit(lambda p: plain.apply({'params': p}, clip, train=False))
  zeroed = jax.tree_util.tree_map_with_path(
      lambda path, p: jnp.zeros_like(p) if 'rel_pos' in str(path[-1]) else p, params)
  on, off = forward(params), forward(zeroed)
  assert np.all(np.isfinite(on)) and np.abs(np.asarray(on) - np.asarray(off)).max() > 1e-3


def test_relative_distances_scale_to_the_finer_grid():
  """PySlowFast's distances: queries on 4 positions, keys on 2 (stride 2) index a 7-row table at
  q - 2 k + 2: the keys' positions scaled to the query grid."""
  np.testing.assert_array_equal(mvit.relative_distances(4, 2),
                                [[2, 0], [3, 1], [4, 2], [5, 3]])
  np.testing.assert_array_equal(mvit.relative_distances(2, 2), [[1, 0], [2, 1]])


@pytest.mark.parametrize('field, value, message', [
    ('depth', 0, r'config.model.depth=0 must be a positive int'),
    ('stage_starts', (3, 1), r'config.model.stage_starts=\(3, 1\) must be increasing'),
    ('stage_starts', (1, 16), r'in \[1, depth=16\)'),
    ('num_heads', 5, r'config.model.embed_dim=16 must be a multiple of config.model.num_heads=5'),
    ('q_stride', (2, 2), r'config.model.q_stride=\(2, 2\) must be 3 positive ints'),
    ('classifier', 'mean', r"config.model.classifier='mean' is not supported by mvit"),
])
def test_config_errors_name_the_field(field, value, message):
  config = common.load(f'{PRESET}:tiny')
  config.model[field] = value
  with pytest.raises(ValueError, match=message):
    models.build(config.model)


def test_presets():
  """The presets' recipe (AdamW, warmup + cosine, label smoothing, Mixup/CutMix, drop path,
  dropout 0.5, 5 x 1 views) and their tiny versions, which keep every model field but the
  sizes."""
  for size in PUBLISHED:
    config, tiny = common.load(f'{PRESET}:{size}'), common.load(f'{PRESET}:tiny,{size}')
    assert (config.optimizer.name, config.optimizer.weight_decay, config.train.label_smoothing,
            config.train.mixup_alpha, config.model.dropout_rate) == ('adamw', 0.05, 0.1, 0.8, 0.5)
    assert (config.dataset.eval_clips, config.dataset.eval_crops) == (5, 1)
    assert config.model.stochastic_depth == {'S': 0.2, 'B': 0.3, 'B_v1': 0.2}[size]
    assert tiny.dataset.name == 'synthetic_motion' and tiny.model.num_classes == 10
    sizes = {'embed_dim', 'patch_stride', 'kv_stride', 'num_classes'}
    for key in set(config.model) - sizes:
      assert tiny.model[key] == config.model[key], (size, key)
  assert common.load(PRESET).to_dict() == common.load(f'{PRESET}:S').to_dict()
  with pytest.raises(ValueError, match=r"Unknown preset argument 'L'.*size=S\|B\|B_v1"):
    common.load(f'{PRESET}:L')


def test_tiny_preset_trains(synthetic_data_dir, tmp_path):
  """loop.setup and one shared train step of the tiny MViTv2-S (bfloat16 compute, drop path),
  cut to 2 blocks (the second a stage start) on 4 x 16 x 16 clips to compile fast: the head
  starts at zero (loss ln 10), the step is finite."""
  config = common.load(f'{PRESET}:tiny')
  config.dataset.update(data_dir=synthetic_data_dir, num_frames=4, crop_size=16)
  config.model.update(depth=2, stage_starts=(1,))
  _, initial, state, metrics = train_one_step(config, str(tmp_path), batch_size=8)
  assert not np.any(initial.params['head']['kernel'])
  assert int(state.step) == 1 and float(metrics['finite']) == 1.0  # Warmup: lr 0 at step 0.
  assert float(metrics['loss_sum'] / metrics['count']) == pytest.approx(np.log(10), rel=1e-5)
  assert all(np.all(np.isfinite(p)) for p in jax.tree.leaves(jax.device_get(state.params)))
