"""3D CNNs: ResNet2D/3D (I3D, Slow), non-local blocks, C3D, R(2+1)D / R3D and their presets.

Parameter counts and layer shapes are checked against published numbers with jax.eval_shape (no
compute); numerics run tiny nets (widths 2-8, clips up to 4 x 32 x 32) with random parameters
filled in numpy, because compiling a real random init costs seconds per parameter on CPU (only the
one train step through loop.setup pays for a real init).
"""
import math
import os
import runpy

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from tests.helpers import REPO, train_one_step
from vivit_jax import models
from vivit_jax.models import c3d, flops, r2plus1d, resnet

I3D_KERNELS = ((3,), (3, 1), (3, 1), (1, 3))
PRESETS = ('configs/cnn/i3d_r50_k400.py', 'configs/cnn/c3d_sports1m.py',
           'configs/cnn/r2plus1d_18_k400.py')


def _preset(path: str, arg=None):
  return runpy.run_path(os.path.join(REPO, path))['get_config'](arg)


def _abstract(model, shape):
  """Unboxed variables of model.init on zeros(shape), as shapes only."""
  return nn.unbox(jax.eval_shape(
      lambda: model.init(jax.random.key(0), jnp.zeros(shape), train=False)))


def _num_params(tree) -> int:
  return sum(math.prod(x.shape) for x in jax.tree.leaves(tree))


def _random_variables(model, shape, seed=0, scale=0.3):
  """Variables of model.init(zeros(shape)) filled in numpy: params normal(0, scale) (so zero-
  initialised scales and heads are live), running means normal, variances in [0.5, 1.5]."""
  rng = np.random.default_rng(seed)

  def fill(path, x):
    name = getattr(path[-1], 'key', '')
    if name == 'var':
      value = rng.uniform(0.5, 1.5, x.shape)
    else:
      value = rng.normal(scale=scale, size=x.shape)
    return jnp.asarray(value, x.dtype)

  return jax.tree_util.tree_map_with_path(fill, _abstract(model, shape))


def _check_tiny_preset_runs(path: str, tiny):
  """The tiny config's model gives (2, 10) float32 logits on two of its clips (shapes only), and
  an unknown preset argument of `path` is refused."""
  ds, small = tiny.dataset, models.build(tiny.model)
  shape = (2, ds.num_frames, ds.crop_size, ds.crop_size, 3)
  logits = jax.eval_shape(lambda v: small.apply(v, jnp.zeros(shape), train=False),
                          _abstract(small, shape))
  assert (logits.shape, logits.dtype) == ((2, 10), jnp.float32)
  with pytest.raises(ValueError, match="Unknown preset argument 'huge'"):
    _preset(path, 'huge')


def _video(shape, seed=1):
  return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


def _resnet3d(**fields):
  fields = dict(dict(num_classes=5, depth=10, base_width=4, dropout_rate=0.0), **fields)
  return resnet.ResNet3D(**fields)


def _conv_macs(model, shape) -> int:
  """Multiply-adds of every nn.Conv and nn.Dense for one input of `shape` (shapes only)."""
  return flops.module_layer_flops(model, _abstract(model, shape), jnp.zeros(shape)) // 2


# Published parameter counts.
@pytest.mark.parametrize('model, expected, rel', [
    # torchvision resnet18 / resnet50 (ImageNet, 1000 classes): exact.
    (resnet.ResNet2D(num_classes=1000, depth=18), 11_689_512, 0),
    (resnet.ResNet2D(num_classes=1000, depth=50), 25_557_032, 0),
    # PySlowFast model zoo, Kinetics-400: I3D 8x8 R50 28.0M, I3D NLN 35.4M, Slow 8x8 R50 32.45M.
    (resnet.ResNet3D(num_classes=400, temporal_kernels=I3D_KERNELS, stem_temporal_kernel=5,
                     temporal_pool=2), 28.0e6, 0.002),
    (resnet.ResNet3D(num_classes=400, temporal_kernels=I3D_KERNELS, stem_temporal_kernel=5,
                     temporal_pool=2, nonlocal_blocks=((), (1, 3), (1, 3, 5), ())), 35.4e6, 0.002),
    (resnet.ResNet3D(num_classes=400, temporal_kernels=(1, 1, 3, 3)), 32.45e6, 0.001),
    # torchvision r3d_18 (Kinetics-400): exact; R(2+1)D-18 matches it by construction (paper).
    (r2plus1d.R2Plus1D(num_classes=400, factorised=False), 33_371_472, 0),
    (r2plus1d.R2Plus1D(num_classes=400), 33_371_472, 0.001),
], ids=['resnet18_2d', 'resnet50_2d', 'i3d_r50', 'i3d_nln_r50', 'slow_r50', 'r3d_18',
        'r2plus1d_18'])
def test_parameter_counts(model, expected, rel):
  shape = (1, 8, 112, 112, 3) if isinstance(model, (resnet.ResNet3D, r2plus1d.R2Plus1D)) else (
      1, 112, 112, 3)
  assert _num_params(_abstract(model, shape)['params']) == pytest.approx(expected, rel=rel, abs=0)


def test_i3d_preset_size_and_multiply_adds():
  """The full-size preset: 28.0M parameters (28.04M); conv + fc multiply-adds per 8 x 256 x 256
  test view (PySlowFast measures at its 256 test crops): 37.1 G against the published 37.5 G, and
  for Slow-R50 8x8 54.52 G, the published number to 0.01%, which checks the count itself."""
  config = _preset('configs/cnn/i3d_r50_k400.py')
  model = models.build(config.model)
  assert (model.depth, model.stem_temporal_kernel, model.temporal_pool) == (50, 5, 2)
  assert model.block_temporal_kernels() == ((3, 3, 3), (3, 1, 3, 1), (3, 1, 3, 1, 3, 1),
                                            (1, 3, 1))
  shape = (1, config.dataset.num_frames, 224, 224, 3)
  assert _num_params(_abstract(model, shape)['params']) == pytest.approx(28.0e6, rel=0.005)
  assert _conv_macs(model, (1, 8, 256, 256, 3)) == pytest.approx(37.5e9, rel=0.02)
  slow = resnet.ResNet3D(num_classes=400, temporal_kernels=(1, 1, 3, 3))
  assert _conv_macs(slow, (1, 8, 256, 256, 3)) == pytest.approx(54.52e9, rel=1e-3)


def test_shapes_dtypes_and_logical_names():
  """bfloat16 compute: float32 logits and params; every parameter carries logical names."""
  cases = [
      (resnet.ResNet2D(num_classes=5, depth=50, base_width=4, dtype=jnp.bfloat16),
       (2, 3, 32, 32, 3)),
      (resnet.ResNet2D(num_classes=5, depth=18, base_width=4, dtype=jnp.bfloat16),
       (2, 32, 32, 3)),
      (_resnet3d(depth=50, temporal_kernels=I3D_KERNELS, stem_temporal_kernel=5, temporal_pool=2,
                 nonlocal_blocks=((0,), (1,), (), ()), dtype=jnp.bfloat16), (2, 8, 32, 32, 3)),
      (c3d.C3D(num_classes=5, base_width=4, fc_width=16, dtype=jnp.bfloat16), (2, 16, 16, 16, 3)),
      (r2plus1d.R2Plus1D(num_classes=5, base_width=4, dtype=jnp.bfloat16), (2, 8, 16, 16, 3)),
  ]
  for model, shape in cases:
    boxed = jax.eval_shape(lambda m=model, s=shape: m.init(jax.random.key(0), jnp.zeros(s),
                                                         train=False))
    params = nn.unbox(boxed['params'])
    assert {p.dtype for p in jax.tree.leaves(params)} == {jnp.dtype(jnp.float32)}
    leaves = jax.tree.leaves(boxed['params'], is_leaf=lambda x: isinstance(x, nn.Partitioned))
    assert all(isinstance(p, nn.Partitioned) for p in leaves), type(model).__name__
    logits = jax.eval_shape(lambda v, x, m=model: m.apply(v, x, train=False), nn.unbox(boxed),
                            jnp.zeros(shape))
    assert (logits.shape, logits.dtype) == ((2, 5), jnp.float32), type(model).__name__
  features = jax.eval_shape(
      lambda: resnet.ResNet2D(num_classes=0, depth=50, base_width=4).init_with_output(
          jax.random.key(0), jnp.zeros((2, 32, 32, 3)), train=False)[0])
  assert features.shape == (2, 4 * 8 * 4)


def _train_and_eval(model):
  """jitted (variables, x) -> (eval logits, train logits, updated batch_stats) of `model`."""

  @jax.jit
  def run(v, x):
    train_logits, mutated = model.apply(v, x, train=True, mutable=['batch_stats'])
    return model.apply(v, x, train=False), train_logits, mutated['batch_stats']

  return run


def test_nonlocal_blocks_start_as_identity():
  """With the shared parameters copied and the non-local BN scale and bias at 0 (their init), a
  net with non-local blocks gives exactly the logits and batch statistics of the net without them,
  in eval and in train mode. The same run checks the forward pass (a 5x7x7 stem, 3x1x1 and 1x1x1
  first convs, temporal pooling): finite logits, eval mode on running averages, train mode
  updating every batch statistic, the stem's with momentum 0.9 toward the batch mean."""
  i3d = dict(temporal_kernels=((3,), (3, 1), 1, 3), stem_temporal_kernel=5, temporal_pool=2)
  plain = _resnet3d(**i3d)
  with_nl = _resnet3d(nonlocal_blocks=((0,), (0,), (0,), ()), **i3d)
  shape = (2, 4, 32, 32, 3)
  variables = _random_variables(with_nl, shape)
  nl_paths = [('stage_1', 'nonlocal_0'), ('stage_2', 'nonlocal_0'), ('stage_3', 'nonlocal_0')]
  for stage, name in nl_paths:
    bn = variables['params'][stage][name]['bn']
    bn['scale'], bn['bias'] = jnp.zeros_like(bn['scale']), jnp.zeros_like(bn['bias'])
  shared = jax.tree.map(lambda x: x, variables)
  for collection in ('params', 'batch_stats'):
    for stage, name in nl_paths:
      del shared[collection][stage][name]
  assert jax.tree.structure(shared) == jax.tree.structure(_abstract(plain, shape))
  video = _video(shape)
  run_nl = _train_and_eval(with_nl)
  a = _train_and_eval(plain)(shared, video)
  logits, train_logits, stats = run_nl(variables, video)
  np.testing.assert_array_equal(a[0], logits)
  np.testing.assert_array_equal(a[1], train_logits)
  jax.tree.map(np.testing.assert_array_equal, a[2],
               {k: {n: b for n, b in v.items() if not n.startswith('nonlocal')}
                if k.startswith('stage') else v for k, v in stats.items()})
  # A live non-local block (scale != 0) changes the output: the check above is not vacuous.
  live = jax.tree.map(lambda x: x, variables)
  live['params']['stage_1']['nonlocal_0']['bn']['scale'] += 1.0
  assert float(jnp.max(jnp.abs(run_nl(live, video)[0] - logits))) > 1e-4

  assert logits.shape == train_logits.shape == (2, 5)
  assert bool(jnp.all(jnp.isfinite(logits))) and bool(jnp.all(jnp.isfinite(train_logits)))
  assert float(jnp.max(jnp.abs(logits - train_logits))) > 1e-3  # Batch vs running statistics.
  assert set(jax.tree.leaves(jax.tree.map(lambda x, y: bool(jnp.any(x != y)), stats,
                                          variables['batch_stats']))) == {True}
  stem = nn.Conv(4, (5, 7, 7), (1, 2, 2), padding=[(2, 2), (3, 3), (3, 3)], use_bias=False)
  batch_mean = jnp.mean(stem.apply({'params': variables['params']['stem_conv']}, video),
                        axis=(0, 1, 2, 3))
  np.testing.assert_allclose(stats['stem_bn']['mean'], 0.9 * variables['batch_stats']['stem_bn'][
      'mean'] + 0.1 * batch_mean, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('stride', [1, 2])
def test_bottleneck_3d_with_unit_time_kernels_is_2d_per_frame(stride):
  """The shared block code: a 3D Bottleneck with kt = 1 on (N, T, H, W, C) equals the 2D one on the
  N * T frames given the same (reshaped) parameters, in train and eval mode."""
  shape = (2, 3, 8, 8, 6)
  block3d = resnet.Bottleneck(width=2, stride=stride, temporal_kernel=1)
  block2d = resnet.Bottleneck(width=2, stride=stride)
  v3 = _random_variables(block3d, shape)
  v2 = jax.tree.map(lambda a: a[0] if a.ndim == 5 else a, v3)
  assert jax.tree.structure(_abstract(block2d, (6, 8, 8, 6))) == jax.tree.structure(v2)
  x = _video(shape)
  a = _train_and_eval(block3d)(v3, x)
  b = _train_and_eval(block2d)(v2, x.reshape(6, 8, 8, 6))
  np.testing.assert_allclose(a[0].reshape(b[0].shape), b[0], rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(a[1].reshape(b[1].shape), b[1], rtol=1e-4, atol=1e-5)
  jax.tree.map(lambda p, q: np.testing.assert_allclose(p, q, rtol=1e-4, atol=1e-6), a[2], b[2])
  assert a[0].shape == (2, 3, 8 // stride, 8 // stride, 8)


def _lax_conv3d(x, kernel, strides, padding, precision=None):
  """lax's 3D convolution, channels-last: what resnet.conv computes elsewhere than on CPU."""
  return jax.lax.conv_general_dilated(x, kernel, strides, padding, precision=precision,
                                      dimension_numbers=('NDHWC', 'DHWIO', 'NDHWC'))


@pytest.mark.parametrize('kernel, strides', [
    ((5, 7, 7), (1, 2, 2)),  # I3D and the fast pathway's stem.
    ((3, 3, 3), (2, 2, 2)),  # C3D, R3D; temporal stride.
    ((1, 3, 3), (1, 2, 2)),  # Bottleneck conv_b.
    ((3, 1, 1), (1, 1, 1)),  # I3D and fast conv_a.
    ((7, 1, 1), (4, 1, 1)),  # SlowFast lateral.
    ((1, 1, 1), (2, 2, 2)),  # Strided shortcut.
], ids=str)
def test_3d_conv_as_2d_matches_lax(kernel, strides):
  """The CPU formulation of resnet.conv's 3D convs as one 2D conv gives lax's 3D convolution's
  outputs and gradients (input and kernel), and a jitted 3D resnet.conv with its gradient lowers
  to 2D convolutions only on CPU."""
  x, w = _video((2, 8, 9, 10, 3)), _video(kernel + (3, 4), seed=2)
  padding = [(k // 2, k // 2) for k in kernel]
  outputs = []
  for f in (resnet._conv3d_as_2d, _lax_conv3d):  # pylint: disable=protected-access
    y, vjp = jax.vjp(lambda a, b, f=f: f(a, b, strides, padding, None), x, w)
    outputs.append((y, *vjp(_video(y.shape, seed=3))))
  for got, expected in zip(*outputs):  # Values up to ~100.
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)
  conv = resnet.conv(4, kernel, strides, dtype=jnp.float32, param_dtype=jnp.float32, name='c')
  variables = conv.init(jax.random.key(0), x)
  hlo = jax.jit(jax.grad(lambda v: jnp.sum(conv.apply(v, x) ** 2))).lower(variables).as_text()
  ranks = {line.split('tensor<')[1].count('x') for line in hlo.splitlines()
           if 'stablehlo.convolution' in line}
  assert ranks == ({4} if jax.default_backend() == 'cpu' else {5})


def test_nonlocal_matches_reference():
  """Embedded Gaussian: x + BN(W_out softmax(theta phi^T / sqrt(C')) g), keys/values max-pooled
  1x2x2, in float64 numpy with eval-mode BN."""
  x = _video((2, 2, 4, 6, 8))
  block = resnet.NonLocal(pool=(1, 2, 2))
  variables = _random_variables(block, x.shape)
  out = jax.jit(lambda v: block.apply(v, x, train=False))(variables)
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), variables['params'])
  s = jax.tree.map(lambda a: np.asarray(a, np.float64), variables['batch_stats'])['bn']
  xn = np.asarray(x, np.float64)
  pooled = xn.reshape(2, 2, 2, 2, 3, 2, 8).max(axis=(3, 5))  # (B, T, H/2, W/2, C).
  proj = lambda name, a: a @ p[name]['kernel'][0, 0, 0] + p[name]['bias']  # noqa: E731
  theta = proj('conv_theta', xn).reshape(2, -1, 4)
  phi, g = (proj(n, pooled).reshape(2, -1, 4) for n in ('conv_phi', 'conv_g'))
  logits = theta @ phi.transpose(0, 2, 1) / np.sqrt(4)
  weights = np.exp(logits - logits.max(-1, keepdims=True))
  weights /= weights.sum(-1, keepdims=True)
  y = proj('conv_out', (weights @ g).reshape(2, 2, 4, 6, 4))
  y = (y - s['mean']) / np.sqrt(s['var'] + 1e-5) * p['bn']['scale'] + p['bn']['bias']
  np.testing.assert_allclose(out, xn + y, rtol=1e-4, atol=1e-4)


def test_2d_and_3d_share_parameter_paths_and_agree_without_time():
  """ResNet2D on every frame == ResNet3D with 1x... kernels everywhere and no temporal pooling,
  given the same parameters (3D kernels = 2D kernels with a leading axis of 1): the same tree
  paths, the same logits and the same updated batch statistics."""
  shape = (2, 3, 16, 16, 3)
  net2d = resnet.ResNet2D(num_classes=5, depth=10, base_width=4, dropout_rate=0.0)
  net3d = _resnet3d(temporal_kernels=(1, 1, 1, 1), stem_temporal_kernel=1)
  v3 = _random_variables(net3d, shape)
  v2 = jax.tree.map(lambda a: a[0] if a.ndim == 5 else a, v3)
  abstract2d = _abstract(net2d, shape)
  assert jax.tree.structure(abstract2d) == jax.tree.structure(v3)
  assert jax.tree.map(lambda a: a.shape, abstract2d) == jax.tree.map(lambda a: a.shape, v2)
  video = _video(shape)
  a = _train_and_eval(net2d)(v2, video)
  b = _train_and_eval(net3d)(v3, video)
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5), a, b)


# C3D, Tran et al. 2015, Fig. 3 / Sec. 3: (T, H, W, C) after each layer of a 16 x 112 x 112 clip.
C3D_TABLE = {
    'conv1a': (16, 112, 112, 64), 'pool1': (16, 56, 56, 64),
    'conv2a': (16, 56, 56, 128), 'pool2': (8, 28, 28, 128),
    'conv3a': (8, 28, 28, 256), 'conv3b': (8, 28, 28, 256), 'pool3': (4, 14, 14, 256),
    'conv4a': (4, 14, 14, 512), 'conv4b': (4, 14, 14, 512), 'pool4': (2, 7, 7, 512),
    'conv5a': (2, 7, 7, 512), 'conv5b': (2, 7, 7, 512), 'pool5': (1, 4, 4, 512),
    'fc6': (4096,), 'fc7': (4096,),
}


def test_c3d_layer_shapes_match_the_paper():
  config = _preset('configs/cnn/c3d_sports1m.py')
  model = models.build(config.model)
  video = jnp.zeros((1, 16, 112, 112, 3))
  variables = _abstract(model, video.shape)
  logits, state = jax.eval_shape(
      lambda v: model.apply(v, video, train=False, mutable=['intermediates']), variables)
  shapes = {k.removesuffix('_out'): v[0].shape[1:] for k, v in state['intermediates'].items()}
  assert shapes == C3D_TABLE
  assert logits.shape == (1, 487)
  kernels = {k: v['kernel'].shape for k, v in variables['params'].items()}
  assert all(kernels[k][:3] == (3, 3, 3) for k in kernels if k.startswith('conv'))
  assert kernels['fc6'] == (8192, 4096) and kernels['head'] == (4096, 487)


def test_r2plus1d_intermediate_widths():
  """M_i = floor(t d^2 N_{i-1} N_i / (d^2 N_{i-1} + t N_i)) (t = d = 3), worked by hand; the built
  net uses it for every factorised conv (its own input and output widths), 45 in the stem, and
  each (2+1)D conv has the parameters of the 3D conv it replaces (to 0.2%; the block to 0.5% with
  the BN between the spatial and temporal convs)."""
  by_hand = {(64, 64): 144, (64, 128): 230, (128, 128): 288, (128, 256): 460, (256, 256): 576,
             (256, 512): 921, (512, 512): 1152}
  assert {k: r2plus1d.mid_width(*k) for k in by_hand} == by_hand
  assert r2plus1d.mid_width(3, 64, t=3, d=7) == 83  # The formula's stem width; 45 is used.
  shape = (1, 8, 112, 112, 3)
  factorised = _abstract(r2plus1d.R2Plus1D(num_classes=400, depth=34), shape)['params']
  full = _abstract(r2plus1d.R2Plus1D(num_classes=400, depth=34, factorised=False), shape)['params']
  assert factorised['stem_conv']['conv_s']['kernel'].shape == (1, 7, 7, 3, 45)
  assert factorised['stem_conv']['conv_t']['kernel'].shape == (3, 1, 1, 45, 64)
  for s, blocks in enumerate((3, 4, 6, 3)):
    out = 64 * 2 ** s
    for j in range(blocks):
      block = factorised[f'stage_{s + 1}'][f'block_{j}']
      cin = out // 2 if (j == 0 and s > 0) else out
      for conv, n_in in (('conv_a', cin), ('conv_b', out)):
        assert block[conv]['conv_s']['kernel'].shape == (1, 3, 3, n_in, by_hand[n_in, out])
        assert block[conv]['conv_t']['kernel'].shape == (3, 1, 1, by_hand[n_in, out], out)
      reference = full[f'stage_{s + 1}'][f'block_{j}']
      assert reference['conv_a']['kernel'].shape == (3, 3, 3, cin, out)
      for conv in ('conv_a', 'conv_b'):  # The floor costs at most 0.2%.
        kernels = _num_params({k: v for k, v in block[conv].items() if k != 'bn_s'})
        assert kernels == pytest.approx(_num_params(reference[conv]), rel=2e-3)
      assert _num_params(block) == pytest.approx(_num_params(reference), rel=5e-3)


def test_r2plus1d_forward_shapes():
  """T, H, W halved by stages 2-4 after a stride-2 stem (shapes only)."""
  model = r2plus1d.R2Plus1D(num_classes=7, base_width=4)
  video = jnp.zeros((2, 8, 32, 32, 3))
  variables = _abstract(model, video.shape)
  _, state = jax.eval_shape(lambda v: model.apply(
      v, video, train=False, mutable=['intermediates'],
      capture_intermediates=lambda m, _: isinstance(m, resnet.Stage)), variables)
  shapes = [state['intermediates'][f'stage_{s}']['__call__'][0].shape for s in range(1, 5)]
  assert shapes == [(2, 8, 16, 16, 4), (2, 4, 8, 8, 8), (2, 2, 4, 4, 16), (2, 1, 2, 2, 32)]


@pytest.mark.parametrize('path', PRESETS)
def test_preset_structure_and_tiny_version(path):
  full, tiny = _preset(path), _preset(path, 'tiny')
  assert full.optimizer.name == 'sgd' and full.optimizer.momentum == 0.9
  # The tiny C3D (no BatchNorm) needs a 10x learning rate to leave chance in 300 steps.
  tiny_lr = 0.03 if 'c3d' in path else full.optimizer.learning_rate
  assert tiny.optimizer.to_dict() == dict(full.optimizer.to_dict(), warmup_steps=60,
                                          learning_rate=tiny_lr)
  assert (tiny.dataset.name, tiny.model.num_classes, tiny.model.base_width,
          tiny.train.num_steps) == ('synthetic_motion', 10, 8, 300)
  for key in set(full.model) - {'num_classes', 'base_width', 'fc_width'}:
    assert tiny.model[key] == full.model[key], key
  model = models.build(full.model)
  if 'i3d' in path:
    assert full.dataset.num_frames == 8 and full.dataset.stride == 8
    assert (full.dataset.eval_clips, full.dataset.eval_crops) == (10, 3)
    assert full.optimizer.learning_rate == 0.1 and full.optimizer.weight_decay == 1e-4
    nl = models.build(_preset(path, 'nonlocal').model)
    assert tuple(map(tuple, nl.nonlocal_blocks)) == ((), (1, 3), (1, 3, 5), ())
    assert _preset(path, 'tiny,nonlocal').model.nonlocal_blocks == nl.nonlocal_blocks
  elif 'c3d' in path:
    assert (model.base_width, model.fc_width, model.num_classes) == (64, 4096, 487)
    assert (full.dataset.num_frames, full.dataset.crop_size, full.train.batch_size) == (16, 112, 30)
    assert full.optimizer.learning_rate == 0.003 and full.train.num_steps == 1_900_000
  else:
    assert (model.depth, model.factorised) == (18, True)
    assert not models.build(_preset(path, 'r3d').model).factorised
    assert (full.dataset.num_frames, full.dataset.crop_size) == (16, 112)
  _check_tiny_preset_runs(path, tiny)


@pytest.mark.slow
def test_tiny_preset_trains(synthetic_data_dir, tmp_path):
  """loop.setup and one train step of the tiny I3D preset, cut to depth 10 (to compile fast) with
  a non-local block: the real init zeroes the last BN scale of each block, the non-local BN and
  the head (so the loss is ln(10)); the step moves the batch statistics."""
  config = _preset('configs/cnn/i3d_r50_k400.py', 'tiny')
  config.dataset.data_dir = synthetic_data_dir
  config.model.update(depth=10, nonlocal_blocks=((), (0,), (), ()))
  _, initial, state, metrics = train_one_step(config, str(tmp_path))
  params = initial.params
  for s in range(1, 5):
    assert not np.any(params[f'stage_{s}']['block_0']['bn_b']['scale'])
    assert np.all(params[f'stage_{s}']['block_0']['bn_a']['scale'] == 1)
  nl = params['stage_2']['nonlocal_0']
  assert not np.any(nl['bn']['scale']) and not np.any(nl['bn']['bias'])
  assert nl['conv_theta']['kernel'].shape == (1, 1, 1, 16, 8)  # Inner width C / 2.
  assert not np.any(params['head']['kernel'])
  assert params['stem_conv']['kernel'].shape == (5, 7, 7, 3, 8)
  np.testing.assert_allclose(np.std(params['stem_conv']['kernel']), np.sqrt(2 / (5 * 49 * 8)),
                             rtol=0.1)  # He normal, fan-out.
  before = initial.batch_stats
  assert int(state.step) == 1 and float(metrics['finite']) == 1.0
  assert float(metrics['loss_sum'] / metrics['count']) == pytest.approx(math.log(10), rel=1e-5)
  after = jax.device_get(state.batch_stats)
  assert not np.allclose(after['stem_bn']['mean'], before['stem_bn']['mean'])
  assert not np.allclose(after['stage_2']['nonlocal_0']['bn']['var'],
                         before['stage_2']['nonlocal_0']['bn']['var'])


@pytest.mark.parametrize('name, fields, match', [
    ('resnet3d', dict(depth=20), r'config.model.depth=20 .* 10, 18, 34, 50, 101, 152'),
    ('resnet3d', dict(temporal_kernels=(1, 3)), r'config.model.temporal_kernels=.* per stage'),
    ('resnet3d', dict(temporal_kernels=(1, 1, 2, 3)), r'temporal_kernels\[2\].* odd'),
    ('resnet3d', dict(stem_temporal_kernel=4), r'stem_temporal_kernel.* odd'),
    ('resnet3d', dict(nonlocal_blocks=((), (4,), (), ())),
     r'nonlocal_blocks\[1\] has \[4\]: stage 2 of ResNet-50 has blocks 0..3'),
    ('resnet3d', dict(nonlocal_blocks=((),)), r'nonlocal_blocks=.* per stage'),
    ('resnet3d', dict(nonlocal_pool=(2, 2)), r'nonlocal_pool=.* 3 ints'),
    ('resnet3d', dict(temporal_pool=0), r'temporal_pool=0 must be a positive int'),
    ('resnet2d', dict(base_width=0), r'config.model.base_width=0'),
    ('r2plus1d', dict(depth=50), r'config.model.depth=50 is not an R\(2\+1\)D depth; use 18 or 34'),
    ('r2plus1d', dict(mid_width_rule='vmz'), r"mid_width_rule='vmz' .* per_conv, torchvision"),
    ('r2plus1d', dict(temporal_stages=5), r'temporal_stages=5 .* set 0 to 4'),
    ('c3d', dict(fc_width=0), r'config.model.fc_width=0'),
    ('resnet3d', dict(widths=3), r'config.model.widths is not a field of resnet3d'),
])
def test_config_errors(name, fields, match):
  config = (_preset('configs/cnn/i3d_r50_k400.py').model if name == 'resnet3d'
            else ml_collections.ConfigDict(dict(name=name, num_classes=5)))
  for field, value in fields.items():
    config[field] = value
  with pytest.raises(ValueError, match=match):
    models.build(config)


def test_input_errors():
  with pytest.raises(ValueError, match=r'temporal_pool=2 exceeds the clip length 1'):
    jax.eval_shape(lambda: _resnet3d(temporal_pool=2).init(
        jax.random.key(0), jnp.zeros((1, 1, 16, 16, 3)), train=False))
  with pytest.raises(ValueError, match=r'C3D pool2 .* at least 16 x 16 x 16'):
    jax.eval_shape(lambda: c3d.C3D(num_classes=2, base_width=2).init(
        jax.random.key(0), jnp.zeros((1, 1, 32, 32, 3)), train=False))
  with pytest.raises(ValueError, match=r'nonlocal_pool=\(1, 4, 4\) is larger than the feature'):
    jax.eval_shape(lambda: _resnet3d(nonlocal_blocks=((), (), (), (0,)), nonlocal_pool=(1, 4, 4))
                   .init(jax.random.key(0), jnp.zeros((1, 4, 32, 32, 3)), train=False))
  with pytest.raises(ValueError, match=r'ResNet3D takes videos'):
    jax.eval_shape(lambda: _resnet3d().init(jax.random.key(0), jnp.zeros((1, 16, 16, 3)),
                                            train=False))
