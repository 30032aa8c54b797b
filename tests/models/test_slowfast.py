"""SlowFast: published size and cost, pathway and lateral shapes, each pathway against ResNet3D,
config and input errors, the preset and one train step through the shared step.

Shapes-only checks use jax.eval_shape; numerics run tiny nets with random variables filled in
numpy (tests/models/test_cnn3d.py's helpers, imported).
"""
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from tests.helpers import train_one_step
from tests.models.test_cnn3d import (_abstract, _check_tiny_preset_runs, _conv_macs,
                                     _lax_conv3d, _num_params, _preset, _random_variables,
                                     _train_and_eval, _video)
from vivit_jax import models
from vivit_jax.models import resnet, slowfast

PRESET = 'configs/cnn/slowfast_r50_k400.py'
SF_4X16 = dict(num_classes=400, alpha=8, fusion_kernel=5)  # SLOWFAST_4x16_R50 (the defaults).
SF_R101 = dict(num_classes=400, depth=101, alpha=4, fusion_kernel=5)  # PyTorchVideo slowfast_r101.


def _full_model():
  return models.build(_preset(PRESET).model)


# PySlowFast / PyTorchVideo Kinetics-400 model zoo (docs/source/model_zoo.md): SlowFast R50 8x8
# 34.57M, 4x16 34.48M, R101 8x8 62.83M (hub slowfast_r101: fusion kernel 5x1x1).
@pytest.mark.parametrize('fields, expected', [
    (None, 34.57e6), (SF_4X16, 34.48e6), (SF_R101, 62.83e6)], ids=['r50_8x8', 'r50_4x16',
                                                                   'r101_8x8'])
def test_parameter_counts(fields, expected):
  model = _full_model() if fields is None else slowfast.SlowFast(**fields)
  count = _num_params(_abstract(model, (1, 32, 224, 224, 3))['params'])
  assert count == pytest.approx(expected, rel=1e-3, abs=0)


@pytest.mark.parametrize('fields, expected, rel', [
    (None, 65.71e9, 1e-3),  # Model zoo 65.71 G (paper Table 2: 65.7).
    (SF_4X16, 36.1e9, 1e-3),  # Paper Table 2: 36.1 G (the zoo lists 36.69).
    (SF_R101, 127.20e9, 0.02),  # Model zoo 127.20 G; here 125.9 G.
], ids=['r50_8x8', 'r50_4x16', 'r101_8x8'])
def test_multiply_adds_per_view(fields, expected, rel):
  """Conv + fc multiply-adds of one 32 x 256 x 256 test view (the model zoo measures at its
  256 test crops, as for I3D and Slow in test_cnn3d.py)."""
  model = _full_model() if fields is None else slowfast.SlowFast(**fields)
  assert _conv_macs(model, (1, 32, 256, 256, 3)) == pytest.approx(expected, rel=rel)


def test_pathway_and_lateral_shapes():
  """A 16 x 32 x 32 clip, alpha 4, widths 8 (slow) and 2 (fast), bfloat16 compute, a non-local
  block: every pathway piece's output, every lateral's kernel and fused output, the widened first
  convs of the slow stages, the temporal kernels of every block, the non-local block in the slow
  pathway only, the head's input width, float32 logits and parameters that all carry logical
  axis names (shapes only)."""
  model = slowfast.SlowFast(num_classes=5, base_width=8, beta_inv=4, alpha=4, fusion_kernel=7,
                            nonlocal_blocks=((), (1,), (), ()), dtype=jnp.bfloat16)
  video = jnp.zeros((2, 16, 32, 32, 3))
  boxed = jax.eval_shape(lambda: model.init(jax.random.key(0), video, train=False))
  leaves = jax.tree.leaves(boxed['params'], is_leaf=lambda x: isinstance(x, nn.Partitioned))
  assert all(isinstance(p, nn.Partitioned) for p in leaves)
  variables = nn.unbox(boxed)
  assert {p.dtype for p in jax.tree.leaves(variables['params'])} == {jnp.dtype(jnp.float32)}
  logits, state = jax.eval_shape(lambda v: model.apply(
      v, video, train=False, mutable=['intermediates'],
      capture_intermediates=lambda m, _: isinstance(m, (slowfast.Pathway,
                                                        slowfast.FuseFastToSlow))), variables)
  out = state['intermediates']
  sizes = [8, 8, 4, 2, 1]  # H = W after the stem and each stage.
  slow_widths, fast_widths = [8, 32, 64, 128, 256], [2, 8, 16, 32, 64]
  assert [a.shape for a in out['slow']['__call__']] == [
      (2, 4, s, s, c) for s, c in zip(sizes, slow_widths)]
  assert [a.shape for a in out['fast']['__call__']] == [
      (2, 16, s, s, c) for s, c in zip(sizes, fast_widths)]
  params = variables['params']
  for i in range(4):
    c = fast_widths[i]
    assert params[f'fuse_{i}']['conv']['kernel'].shape == (7, 1, 1, c, 2 * c)
    assert out[f'fuse_{i}']['__call__'][0].shape == (2, 4, sizes[i], sizes[i],
                                                    slow_widths[i] + 2 * c)
    block = params['slow'][f'stage_{i + 1}']['block_0']
    cin = slow_widths[i] + 2 * c
    assert block['conv_a']['kernel'].shape == (1 if i < 2 else 3, 1, 1, cin, 8 * 2 ** i)
    assert block['shortcut_conv']['kernel'].shape == (1, 1, 1, cin, slow_widths[i + 1])
  for name, kernels in (('slow', (1, 1, 3, 3)), ('fast', (3, 3, 3, 3))):
    for s, n in enumerate((3, 4, 6, 3)):
      stage = params[name][f'stage_{s + 1}']
      assert [stage[f'block_{j}']['conv_a']['kernel'].shape[0] for j in range(n)] == [
          kernels[s]] * n
      assert all(stage[f'block_{j}']['conv_b']['kernel'].shape[:3] == (1, 3, 3)
                 for j in range(n))
  assert params['slow']['stage_2']['nonlocal_1']['conv_theta']['kernel'].shape == (
      1, 1, 1, 64, 32)
  assert not [k for k in params['fast']['stage_2'] if k.startswith('nonlocal')]
  assert params['slow']['stem_conv']['kernel'].shape == (1, 7, 7, 3, 8)
  assert params['fast']['stem_conv']['kernel'].shape == (5, 7, 7, 3, 2)
  assert params['head']['kernel'].shape == (256 + 64, 5) == (model.num_features, 5)
  assert (logits.shape, logits.dtype) == ((2, 5), jnp.float32)


def _slice_to(reference, tree):
  """`tree`'s arrays cut to the shapes of `reference`'s (the leading entries of each axis)."""
  return jax.tree.map(lambda r, a: a[tuple(slice(0, n) for n in r.shape)], reference, tree)


@pytest.mark.slow
def test_each_pathway_is_a_resnet3d():
  """Given the same parameters and batch statistics, in eval and train mode:
  - with the laterals' BN scale and bias at 0 (their outputs exactly 0) and the head's fast rows
    at 0, SlowFast's logits and slow batch statistics are those of the Slow-only ResNet3D
    (temporal kernels 1, 1, 3, 3, stem 1) on video[:, ::alpha], its first convs of each stage
    given the slow channels of SlowFast's kernels;
  - with live laterals and the head's slow rows at 0, its logits and fast batch statistics are
    those of ResNet3D(stem 5, kernels 3, 3, 3, 3) at the fast width on the whole clip (nothing
    flows from Slow to Fast);
  - live laterals do change the slow pathway's output (the first check is not vacuous)."""
  depth, width, shape = 50, 4, (2, 8, 32, 32, 3)
  model = slowfast.SlowFast(num_classes=5, depth=depth, base_width=width, beta_inv=2, alpha=4,
                            fusion_kernel=5, dropout_rate=0.0)
  variables = _random_variables(model, shape)
  video = _video(shape)
  kernel = variables['params']['head']['kernel']
  slow_ref = resnet.ResNet3D(num_classes=5, depth=depth, base_width=width, dropout_rate=0.0)
  n_slow = slow_ref.num_features  # Head rows of the slow features.
  fast_ref = resnet.ResNet3D(num_classes=5, depth=depth, base_width=width // 2,
                             temporal_kernels=(3, 3, 3, 3), stem_temporal_kernel=5,
                             dropout_rate=0.0)
  run = _train_and_eval(model)

  def reference(net, pathway, rows, x):
    abstract = _abstract(net, x.shape)
    params = dict(_slice_to({k: v for k, v in abstract['params'].items() if k != 'head'},
                            variables['params'][pathway]),
                  head=dict(kernel=kernel[rows], bias=variables['params']['head']['bias']))
    return _train_and_eval(net)(dict(params=params,
                                     batch_stats=variables['batch_stats'][pathway]), x)

  def with_head_rows_zeroed(v, rows):
    v = jax.tree.map(lambda x: x, v)
    v['params']['head']['kernel'] = kernel.at[rows].set(0.0)
    return v

  no_lateral = with_head_rows_zeroed(variables, slice(n_slow, None))
  for i in range(4):
    bn = no_lateral['params'][f'fuse_{i}']['bn']
    bn['scale'], bn['bias'] = jnp.zeros_like(bn['scale']), jnp.zeros_like(bn['bias'])
  close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)  # noqa: E731
  expected = reference(slow_ref, 'slow', slice(0, n_slow), video[:, ::4])
  got = run(no_lateral, video)
  close(got[0], expected[0])
  close(got[1], expected[1])
  jax.tree.map(close, got[2]['slow'], expected[2])

  expected = reference(fast_ref, 'fast', slice(n_slow, None), video)
  got = run(with_head_rows_zeroed(variables, slice(0, n_slow)), video)
  close(got[0], expected[0])
  close(got[1], expected[1])
  jax.tree.map(close, got[2]['fast'], expected[2])

  live = run(with_head_rows_zeroed(variables, slice(n_slow, None)), video)
  assert float(jnp.max(jnp.abs(live[0] - run(no_lateral, video)[0]))) > 1e-3


def test_cpu_conv_formulation_keeps_the_numbers(monkeypatch):
  """SlowFast (basic blocks: kt x 3 x 3 convs; 5x7x7 and 1x7x7 stems, 5x1x1 laterals of stride
  4, strided shortcuts) gives the same eval and train logits, batch statistics and parameter
  gradients with resnet.conv's 3D convs as 2D ones (its CPU path) as with lax's 3D convs."""
  shape = (2, 8, 32, 32, 3)
  model = slowfast.SlowFast(num_classes=5, depth=10, base_width=4, beta_inv=2, alpha=4,
                            fusion_kernel=5, dropout_rate=0.0)
  variables, video = _random_variables(model, shape), _video(shape)

  def run(v):
    grads = jax.grad(lambda p: jnp.sum(jnp.sin(model.apply(
        dict(v, params=p), video, train=True, mutable=['batch_stats'])[0])))(v['params'])
    return _train_and_eval(model)(v, video), grads

  as_2d = jax.jit(run)(variables)
  monkeypatch.setattr(resnet, '_conv3d_as_2d', _lax_conv3d)
  native = jax.jit(run)(variables)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), as_2d,
               native)


@pytest.mark.parametrize('fields, match', [
    (dict(depth=20), r'config.model.depth=20 .* 10, 18, 34, 50, 101, 152'),
    (dict(alpha=0), r'config.model.alpha=0 must be a positive int'),
    (dict(beta_inv=0), r'config.model.beta_inv=0 must be a positive int'),
    (dict(base_width=12), r'config.model.base_width=12 must be divisible by '
                          r'config.model.beta_inv=8'),
    (dict(fusion_kernel=4), r'config.model.fusion_kernel=4 must be a positive odd int'),
    (dict(fusion_conv_channel_ratio=0), r'config.model.fusion_conv_channel_ratio=0'),
    (dict(nonlocal_blocks=((), (4,), (), ())),
     r'nonlocal_blocks\[1\] has \[4\]: stage 2 of ResNet-50 has blocks 0..3'),
    (dict(speed_ratio=4), r'config.model.speed_ratio is not a field of slowfast'),
])
def test_config_errors(fields, match):
  config = _preset(PRESET).model
  for field, value in fields.items():
    config[field] = value
  with pytest.raises(ValueError, match=match):
    models.build(config)


def test_input_errors():
  model = slowfast.SlowFast(num_classes=2, depth=10, base_width=8, alpha=4)
  init = lambda shape: jax.eval_shape(  # noqa: E731
      lambda: model.init(jax.random.key(0), jnp.zeros(shape), train=False))
  with pytest.raises(ValueError, match=r'clip length divisible by config.model.alpha=4 .* got '
                                       r'6 frames'):
    init((1, 6, 32, 32, 3))
  with pytest.raises(ValueError, match=r'SlowFast takes videos \(B, T, H, W, C\)'):
    init((1, 32, 32, 3))
  assert _abstract(model, (1, 8, 32, 32, 3))['params']['fuse_0']['conv']['kernel'].shape == (5, 1, 1, 1, 2)


def test_preset_and_tiny_version():
  """The 8x8 recipe of SLOWFAST_8x8_R50.yaml; the tiny version differs only in its size, its
  fast width and its synthetic 16 x 28 x 28 clips at stride 1, and builds a (2, 10) classifier."""
  full, tiny = _preset(PRESET), _preset(PRESET, 'tiny')
  model = models.build(full.model)
  assert (model.depth, model.base_width, model.alpha, model.beta_inv, model.fusion_kernel,
          model.fusion_conv_channel_ratio, model.dropout_rate) == (50, 64, 4, 8, 7, 2, 0.5)
  ds = full.dataset
  assert (ds.num_frames, ds.stride, ds.crop_size, ds.eval_clips, ds.eval_crops) == (32, 2, 224,
                                                                                   10, 3)
  opt = full.optimizer
  assert (opt.name, opt.learning_rate, opt.momentum, opt.nesterov, opt.weight_decay) == (
      'sgd', 0.1, 0.9, True, 1e-4)
  steps_per_epoch = 240436 // 64
  assert full.train.batch_size == 64
  assert (full.train.num_steps, opt.warmup_steps) == (196 * steps_per_epoch, 34 * steps_per_epoch)
  assert tiny.optimizer.to_dict() == dict(opt.to_dict(), warmup_steps=60)
  for key in set(full.model) - {'num_classes', 'base_width', 'beta_inv'}:
    assert tiny.model[key] == full.model[key], key
  assert (tiny.model.base_width, tiny.model.beta_inv, tiny.model.num_classes) == (8, 4, 10)
  ds = tiny.dataset
  assert (ds.name, ds.num_frames, ds.stride, ds.crop_size) == ('synthetic_motion', 16, 1, 28)
  _check_tiny_preset_runs(PRESET, tiny)


@pytest.mark.slow
def test_tiny_preset_trains(synthetic_data_dir, tmp_path):
  """loop.setup and one train step of the tiny preset, cut to depth 10 (to compile fast): the real
  init zeroes each block's last BN scale in both pathways and the head (so the loss is ln(10));
  the step moves the batch statistics of both stems and of every lateral."""
  config = _preset(PRESET, 'tiny')
  config.dataset.data_dir = synthetic_data_dir
  config.model.depth = 10
  _, initial, state, metrics = train_one_step(config, str(tmp_path))
  params = initial.params
  for pathway in ('slow', 'fast'):
    for s in range(1, 5):
      assert not np.any(params[pathway][f'stage_{s}']['block_0']['bn_b']['scale'])
  assert not np.any(params['head']['kernel'])
  assert params['fuse_0']['conv']['kernel'].shape == (7, 1, 1, 2, 4)
  before = initial.batch_stats
  assert int(state.step) == 1 and float(metrics['finite']) == 1.0
  assert float(metrics['loss_sum'] / metrics['count']) == pytest.approx(math.log(10), rel=1e-5)
  after = jax.device_get(state.batch_stats)
  for name in ('slow', 'fast'):
    assert not np.allclose(after[name]['stem_bn']['mean'], before[name]['stem_bn']['mean'])
  for i in range(4):
    assert not np.allclose(after[f'fuse_{i}']['bn']['var'], before[f'fuse_{i}']['bn']['var'])


def test_registered():
  config = ml_collections.ConfigDict(dict(name='slowfast', num_classes=3, depth=10, base_width=8))
  assert isinstance(models.build(config), slowfast.SlowFast)
