"""Recurrent models: CNN + LSTM (against torch.nn.LSTM) and the GRU-RCN ConvGRU (against the
paper's equations in numpy), causality, frame order, shapes, errors and the presets.

Tiny nets (depth 10, base_width 4, 4 x 16 x 16 clips) with random variables filled in numpy, as in
test_cnn3d.py, whose helpers these tests reuse.
"""
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
import torch

from tests.helpers import load_config, train_one_step
from tests.models.test_cnn3d import (_abstract, _check_tiny_preset_runs, _num_params, _preset,
                                     _random_variables, _video)
from vivit_jax import models
from vivit_jax.models import recurrent, resnet

SHAPE = (2, 4, 16, 16, 3)
TRUNK = dict(depth=10, base_width=4, dropout_rate=0.0)
GATES = ('i', 'f', 'g', 'o')  # flax's LSTMCell and torch.nn.LSTM order.
# Parameter scale at which the random trunk's per-frame features vary across frames (std 0.1 for
# mean magnitude 0.4; at test_cnn3d's default 0.3 the BN biases dominate: std 0.003).
SCALE = 0.4


def _cnn_lstm(**fields):
  return recurrent.CNNLSTM(**dict(dict(num_classes=5, lstm_width=6, num_lstm_layers=2, **TRUNK),
                                  **fields))


def _conv_gru(**fields):
  return recurrent.ConvGRU(**dict(dict(num_classes=5, levels=(1, 2, 3, 4),
                                       hidden_widths=(2, 3, 4, 5), **TRUNK), **fields))


def _apply(model, variables, video, **kwargs):
  return np.asarray(jax.jit(lambda v, x: model.apply(v, x, train=False, **kwargs))(variables,
                                                                                    video))


def test_cnn_lstm_matches_resnet2d_and_torch_lstm():
  """The trunk's per-frame features are ResNet2D(num_classes=0) on the frames folded into the
  batch (same parameters); on them torch.nn.LSTM (2 layers, weights copied: W_ih rows i, f, g, o
  from flax's i{gate} kernels, b_hh from its h{gate} biases, b_ih = 0) and torch's Linear give
  the per-frame logits; the last step's are the many-to-one logits, their mean readout 'mean'."""
  model = _cnn_lstm()
  variables = _random_variables(model, SHAPE, scale=SCALE)
  video = _video(SHAPE)
  trunk = {c: {k: v for k, v in variables[c].items() if k not in ('lstm', 'head')}
           for c in variables}
  features = resnet.ResNet2D(num_classes=0, **TRUNK).apply(
      trunk, video.reshape((-1,) + SHAPE[2:]), train=False).reshape(SHAPE[:2] + (-1,))

  p = jax.tree.map(lambda a: torch.tensor(np.asarray(a)), variables['params'])
  lstm = torch.nn.LSTM(features.shape[-1], 6, num_layers=2, batch_first=True)
  head = torch.nn.Linear(6, 5)
  with torch.no_grad():
    for layer in range(2):
      cell = p['lstm'][f'lstm_{layer}']
      getattr(lstm, f'weight_ih_l{layer}').copy_(torch.cat([cell[f'i{g}']['kernel'].T
                                                            for g in GATES]))
      getattr(lstm, f'weight_hh_l{layer}').copy_(torch.cat([cell[f'h{g}']['kernel'].T
                                                            for g in GATES]))
      getattr(lstm, f'bias_hh_l{layer}').copy_(torch.cat([cell[f'h{g}']['bias'] for g in GATES]))
      getattr(lstm, f'bias_ih_l{layer}').zero_()
    head.weight.copy_(p['head']['kernel'].T)
    head.bias.copy_(p['head']['bias'])
    expected = head(lstm(torch.tensor(np.asarray(features)))[0]).numpy()  # (B, T, K).

  per_frame = _apply(model, variables, video, per_frame=True)
  assert per_frame.shape == (2, 4, 5)
  assert np.max(np.abs(per_frame - expected)) < 1e-6
  np.testing.assert_allclose(_apply(model, variables, video), per_frame[:, -1], rtol=0, atol=1e-6)
  mean = _apply(_cnn_lstm(readout='mean'), variables, video)
  np.testing.assert_allclose(mean, expected.mean(axis=1), rtol=0, atol=1e-6)
  assert np.max(np.abs(expected[:, -1] - expected[:, 0])) > 1e-2  # Steps differ: not vacuous.


def _same_conv(x, kernel, bias=None):
  """numpy float64 2D cross-correlation with zero padding k // 2: (N, H, W, C), (k, k, C, F)."""
  k = kernel.shape[0]
  padded = np.pad(x, ((0, 0), (k // 2, k // 2), (k // 2, k // 2), (0, 0)))
  h, w = x.shape[1:3]
  out = sum(np.einsum('nhwc,cf->nhwf', padded[:, i:i + h, j:j + w], kernel[i, j])
            for i in range(k) for j in range(k))
  return out if bias is None else out + bias


def _sigmoid(a):
  return 1 / (1 + np.exp(-a))


@pytest.mark.parametrize('kernel_size', [1, 3])
def test_conv_gru_matches_the_paper_equations(kernel_size):
  """A GRU-RCN level run over T = 4 steps equals, in float64 numpy, a Python loop of Ballas et
  al.'s eqs. 4-7 with one set of weights for every step and h_0 = 0:
  z = sig(W_z x + U_z h), r = sig(W_r x + U_r h), h~ = tanh(W x + U (r h)), h = (1 - z) h + z h~
  (the level then average-pools h_T: num_classes 0 returns it)."""
  maps = _video((2, 4, 5, 6, 3), seed=2)
  level = recurrent.GRURCNLevel(width=4, num_classes=0, kernel_size=kernel_size)
  variables = _random_variables(level, maps.shape, scale=0.5)
  out = _apply(level, variables, maps)
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), variables['params']['gru'])
  x_all = np.asarray(maps, np.float64)
  h = np.zeros((2, 5, 6, 4))
  hs = []
  for t in range(4):
    xz, xr, xc = np.split(_same_conv(x_all[:, t], p['input_conv']['kernel'],
                                     p['input_conv']['bias']), 3, axis=-1)
    hz, hr = np.split(_same_conv(h, p['hidden_conv_zr']['kernel']), 2, axis=-1)
    z, r = _sigmoid(xz + hz), _sigmoid(xr + hr)
    candidate = np.tanh(xc + _same_conv(r * h, p['hidden_conv']['kernel']))
    h = (1 - z) * h + z * candidate
    hs.append(h)
  np.testing.assert_allclose(out, h.mean(axis=(1, 2)), rtol=0, atol=1e-6)
  assert np.max(np.abs(hs[-1] - hs[-2])) > 1e-2  # The state still moves: the check bites.


def test_causality_and_frame_order():
  """Evaluation mode: replacing frame t leaves the per-frame logits of steps < t exactly unchanged
  and changes those of every step >= t; reversing the frames changes the many-to-one logits of
  both models (a time-averaging ResNet2D would not notice)."""
  video = _video(SHAPE)
  model = _cnn_lstm()
  variables = _random_variables(model, SHAPE, scale=SCALE)
  base = _apply(model, variables, video, per_frame=True)
  for t in range(SHAPE[1]):
    changed = video.at[:, t].set(_video((2,) + SHAPE[2:], seed=10 + t))
    diff = np.max(np.abs(_apply(model, variables, changed, per_frame=True) - base), axis=(0, 2))
    assert np.all(diff[:t] == 0) and np.all(diff[t:] > 1e-3), (t, diff)
  reversed_video = video[:, ::-1]
  assert np.max(np.abs(_apply(model, variables, reversed_video) - base[:, -1])) > 1e-2
  gru = _conv_gru()
  gru_variables = _random_variables(gru, SHAPE, scale=SCALE)
  assert np.max(np.abs(_apply(gru, gru_variables, reversed_video)
                       - _apply(gru, gru_variables, video))) > 1e-2


def test_shapes_dtypes_and_logical_names():
  """bfloat16 compute: float32 logits and params, every parameter named; per-frame and feature
  outputs; a ConvGRU only builds the trunk stages its levels need."""
  cases = [(_cnn_lstm(dtype=jnp.bfloat16), {}, (2, 5)),
           (_cnn_lstm(dtype=jnp.bfloat16, readout='mean'), dict(per_frame=True), (2, 4, 5)),
           (_cnn_lstm(num_classes=0), {}, (2, 6)),
           (_cnn_lstm(num_classes=0), dict(per_frame=True), (2, 4, 6)),
           (_conv_gru(dtype=jnp.bfloat16), {}, (2, 5)),
           (_conv_gru(num_classes=0, levels=(1, 3), hidden_widths=(2, 7)), {}, (2, 9))]
  for model, kwargs, shape in cases:
    boxed = jax.eval_shape(lambda m=model: m.init(jax.random.key(0), jnp.zeros(SHAPE),
                                                  train=False))
    leaves = jax.tree.leaves(boxed['params'], is_leaf=lambda x: isinstance(x, nn.Partitioned))
    assert all(isinstance(p, nn.Partitioned) for p in leaves), type(model).__name__
    params = nn.unbox(boxed['params'])
    assert {p.dtype for p in jax.tree.leaves(params)} == {jnp.dtype(jnp.float32)}
    out = jax.eval_shape(lambda v, m=model, k=kwargs: m.apply(v, jnp.zeros(SHAPE), train=False,
                                                              **k), nn.unbox(boxed))
    assert (out.shape, out.dtype) == (shape, jnp.float32), (type(model).__name__, kwargs)
  subset = _abstract(_conv_gru(levels=(1, 3), hidden_widths=(2, 7)), SHAPE)['params']
  assert sorted(subset) == ['level_1', 'level_3', 'stage_1', 'stage_2', 'stage_3', 'stem_bn',
                            'stem_conv']
  assert subset['level_3']['gru']['input_conv']['kernel'].shape == (3, 3, 16, 21)
  assert subset['level_3']['head']['kernel'].shape == (7, 5)


@pytest.mark.parametrize('name, fields, match', [
    ('cnn_lstm', dict(readout='max'), r"config.model.readout='max' is not a readout"),
    ('cnn_lstm', dict(lstm_width=0), r'config.model.lstm_width=0 must be a positive int'),
    ('cnn_lstm', dict(num_lstm_layers=0), r'config.model.num_lstm_layers=0'),
    ('cnn_lstm', dict(feature_dropout_rate=1.0), r'config.model.feature_dropout_rate=1.0'),
    ('cnn_lstm', dict(depth=20), r'config.model.depth=20 is not a ResNet depth'),
    ('cnn_lstm', dict(hidden_widths=(2,)),
     r'config.model.hidden_widths is not a field of cnn_lstm'),
    ('conv_gru', dict(levels=(3, 1)), r'config.model.levels=\(3, 1\) must be increasing'),
    ('conv_gru', dict(levels=(1, 5), hidden_widths=(2, 2)), r'config.model.levels=\(1, 5\)'),
    ('conv_gru', dict(levels=(1, 2), hidden_widths=(2,)),
     r'config.model.hidden_widths=\(2,\) needs one width per level'),
    ('conv_gru', dict(levels=(4,), hidden_widths=(0,)), r'config.model.hidden_widths\[0\]=0'),
    ('conv_gru', dict(kernel_size=2), r'config.model.kernel_size=2 must be a positive odd int'),
])
def test_config_errors(name, fields, match):
  config = ml_collections.ConfigDict(dict(name=name, num_classes=5, **fields))
  with pytest.raises(ValueError, match=match):
    models.build(config)


@pytest.mark.parametrize('model', [_cnn_lstm(), _conv_gru()], ids=['cnn_lstm', 'conv_gru'])
def test_input_errors(model):
  with pytest.raises(ValueError, match=rf'{type(model).__name__} takes videos \(B, T, H, W, C\), '
                                       r'got shape \(2, 16, 16, 3\)'):
    jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((2, 16, 16, 3)), train=False))


PRESETS = ('configs/cnn/cnn_lstm.py', 'configs/cnn/conv_gru.py')


def test_preset_models():
  """Full-size models: the CNN + LSTM has torchvision ResNet-50's 23,508,032 trunk parameters
  (its 25,557,032 less the 1000-way fc) plus 4 H (D + H + 1) per LSTM layer (one bias per gate)
  plus the head; the GRU-RCN has ResNet-18's trunk plus per level 9 C 3H + 3H (input conv with
  bias) + 9 H 3H (hidden convs) + (H + 1) K."""
  shape = (1, 4, 64, 64, 3)
  for arg, (h, layers, readout, frames) in {'': (256, 1, 'mean', 16),
                                            'snippets': (512, 5, 'last', 30)}.items():
    config = _preset(PRESETS[0], arg)
    model = models.build(config.model)
    assert (model.depth, model.lstm_width, model.num_lstm_layers, model.readout,
            config.dataset.num_frames) == (50, h, layers, readout, frames)
    lstm = 4 * h * (2048 + h + 1) + (layers - 1) * 4 * h * (2 * h + 1)
    assert _num_params(_abstract(model, shape)['params']) == 23_508_032 + lstm + (h + 1) * 400
  config = _preset(PRESETS[1])
  model = models.build(config.model)
  assert (model.depth, tuple(model.levels), tuple(model.hidden_widths), model.kernel_size) == (
      18, (1, 2, 3, 4), (64, 128, 256, 512), 3)
  gru = sum(9 * c * 3 * c + 3 * c + 9 * c * 3 * c + (c + 1) * 400 for c in (64, 128, 256, 512))
  resnet18_trunk = 11_689_512 - 512 * 1000 - 1000  # torchvision resnet18 without its fc.
  assert _num_params(_abstract(model, shape)['params']) == resnet18_trunk + gru


@pytest.mark.parametrize('path', PRESETS)
def test_preset_tiny_versions(path):
  """The tiny version keeps every model field but the sizes (and cnn_lstm's readout, 'last') and
  trains with configs/default.py's AdamW; the full presets use SGD."""
  full, tiny = _preset(path), _preset(path, 'tiny')
  assert tiny.optimizer.to_dict() == dict(load_config().optimizer.to_dict(), warmup_steps=60)
  assert (full.optimizer.name, full.optimizer.momentum) == ('sgd', 0.9)
  assert (tiny.dataset.name, tiny.model.num_classes, tiny.model.base_width, tiny.model.dtype,
          tiny.train.num_steps) == ('synthetic_motion', 10, 8, 'bfloat16', 300)
  for key in set(full.model) - {'num_classes', 'base_width', 'hidden_widths', 'readout'}:
    assert tiny.model[key] == full.model[key], key
  if 'conv_gru' in path:
    assert tuple(tiny.model.hidden_widths) == (8, 16, 32, 64)
  else:
    assert (full.model.readout, tiny.model.readout) == ('mean', 'last')
    assert _preset(path, 'tiny,snippets').model.num_lstm_layers == 5
  _check_tiny_preset_runs(path, tiny)


@pytest.mark.slow
@pytest.mark.parametrize('path', PRESETS)
def test_tiny_preset_trains(path, synthetic_data_dir, tmp_path):
  """loop.setup and one shared train step of the tiny preset cut to depth 10. The real init:
  zero heads (so the loss is ln(10)), orthogonal LSTM recurrent kernels, LeCun-normal ConvGRU
  input convs; the step moves the trunk's BatchNorm statistics (taken over B * T frames)."""
  config = _preset(path, 'tiny')
  config.dataset.data_dir = synthetic_data_dir
  config.model.depth = 10
  _, initial, state, metrics = train_one_step(config, str(tmp_path))
  assert int(state.step) == 1 and float(metrics['finite']) == 1.0
  assert float(metrics['loss_sum'] / metrics['count']) == pytest.approx(math.log(10), rel=1e-5)
  params = initial.params
  if 'lstm' in path:
    heads = [params['head']]
    for gate in GATES:
      kernel = params['lstm']['lstm_0'][f'h{gate}']['kernel']
      np.testing.assert_allclose(kernel.T @ kernel, np.eye(256), atol=1e-5)
  else:
    heads = [params[f'level_{s}']['head'] for s in range(1, 5)]
    kernel = params['level_4']['gru']['input_conv']['kernel']
    assert kernel.shape == (3, 3, 64, 3 * 64)
    assert np.std(kernel) == pytest.approx(np.sqrt(1 / (9 * 64)), rel=0.05)
  assert all(not np.any(head['kernel']) for head in heads)
  assert not np.allclose(jax.device_get(state.batch_stats)['stem_bn']['mean'],
                         initial.batch_stats['stem_bn']['mean'])
