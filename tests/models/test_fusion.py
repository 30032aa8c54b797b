"""Karpathy et al.'s image-CNN baselines (vivit_jax/models/fusion.py) and their presets.

Numerics run depth-10 ResNets at base_width 4 on 16 x 16 frames with random variables filled in
numpy (tests.models.test_cnn3d's helpers) and compare each model with its hand computation from
ResNet2D's own outputs; parameter counts of the presets are derived from torchvision's ResNet-18.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.models.test_cnn3d import _abstract, _num_params, _preset, _random_variables, _video
from vivit_jax import models
from vivit_jax.models import fusion, resnet

SMALL = dict(num_classes=5, depth=10, base_width=4, dropout_rate=0.0)
SHAPE = (2, 4, 16, 16, 3)
# Parameter scale of the random variables: at 0.3 these nets' logits vary by ~0.004 between
# frames (BN biases dominate), at 0.45 by ~0.4 (magnitude ~2), at 0.6 they blow up.
SCALE = 0.45
PRESETS = ('configs/cnn/single_frame.py', 'configs/cnn/late_fusion.py',
           'configs/cnn/early_fusion.py')
# torchvision resnet18: 11,689,512 parameters, of which the 1000-way fc has 513,000.
RESNET18_TRUNK = 11_689_512 - 513_000


def _sub(variables, name):
  """The variables of submodule `name`, every collection."""
  return {col: tree[name] for col, tree in variables.items()}


def _resnet2d(num_classes=SMALL['num_classes']):
  return resnet.ResNet2D(**dict(SMALL, num_classes=num_classes))


def _log_mean_softmax(logits, axis):
  """log(mean softmax) in float64 numpy."""
  logits = np.asarray(logits, np.float64)
  p = np.exp(logits - logits.max(-1, keepdims=True))
  return np.log(np.mean(p / p.sum(-1, keepdims=True), axis=axis))


def test_single_frame_averages_frame_probabilities():
  """Output = log(mean_t softmax(ResNet2D(frame_t))): a hand computation from per-frame logits;
  softmax(output) sums to 1; permuting frames leaves the output unchanged."""
  model = fusion.SingleFrame(**SMALL)
  variables = _random_variables(model, SHAPE, scale=SCALE)
  video = _video(SHAPE)
  out = model.apply(variables, video, train=False)
  frame_logits = _resnet2d().apply(_sub(variables, 'resnet'), video.reshape(8, 16, 16, 3),
                                   train=False)
  expected = _log_mean_softmax(np.asarray(frame_logits).reshape(2, 4, 5), axis=1)
  assert out.shape == (2, 5) and out.dtype == jnp.float32
  np.testing.assert_allclose(out, expected, atol=2e-5)
  np.testing.assert_allclose(np.exp(out).sum(-1), 1.0, atol=1e-5)
  # Not the softmax of averaged logits: the two differ on these frames.
  assert np.abs(_log_mean_softmax(np.asarray(frame_logits).reshape(2, 4, 5).mean(1), ()) -
                expected).max() > 1e-2
  permuted = model.apply(variables, video[:, jnp.array([2, 0, 3, 1])], train=False)
  np.testing.assert_allclose(permuted, out, atol=1e-5)


def test_late_fusion_frame_selection():
  late = lambda n: fusion.LateFusion(**SMALL, num_fusion_frames=n)
  assert late(2).frame_indices(16).tolist() == [0, 15]  # Karpathy: 2 frames 15 apart.
  assert late(2).frame_indices(8).tolist() == [0, 7]
  assert late(3).frame_indices(8).tolist() == [0, 4, 7]  # round(3.5) = 4.
  assert late(0).frame_indices(5).tolist() == [0, 1, 2, 3, 4]
  with pytest.raises(ValueError, match=r'num_fusion_frames=5 exceeds the clip length 4'):
    late(5).frame_indices(4)


def test_late_fusion_concat_matches_hand_computation_and_sees_order():
  """concat with 2 of 4 frames: relu(concat(features_0, features_3) @ fc) @ head, from ResNet2D's
  pooled features; frames 1 and 2 are ignored; swapping the fused frames changes the output."""
  model = fusion.LateFusion(**SMALL, fusion='concat', num_fusion_frames=2, hidden_width=8)
  variables = _random_variables(model, SHAPE, scale=SCALE)
  params = variables['params']
  assert params['fc']['kernel'].shape == (2 * 32, 8) and params['head']['kernel'].shape == (8, 5)
  video = _video(SHAPE)
  out = model.apply(variables, video, train=False)
  features = _resnet2d(0).apply(_sub(variables, 'resnet'),
                                video[:, jnp.array([0, 3])].reshape(4, 16, 16, 3), train=False)
  hidden = np.maximum(np.asarray(features).reshape(2, 64) @ params['fc']['kernel'] +
                      params['fc']['bias'], 0)
  np.testing.assert_allclose(out, hidden @ params['head']['kernel'] + params['head']['bias'],
                             rtol=1e-4, atol=1e-4)
  middle_changed = video.at[:, 1:3].set(_video((2, 2, 16, 16, 3), seed=7))
  np.testing.assert_allclose(model.apply(variables, middle_changed, train=False), out, atol=1e-6)
  swapped = model.apply(variables, video[:, ::-1], train=False)
  assert np.abs(swapped - out).max() > 1e-2 * np.abs(out).max()


def test_late_fusion_pool_is_resnet2d_and_blind_to_order():
  """pool with every frame = ResNet2D on the video (space-time average, one linear layer);
  reversing the frames leaves it unchanged."""
  model = fusion.LateFusion(**SMALL, fusion='pool')
  variables = _random_variables(model, SHAPE, scale=SCALE)
  assert set(variables['params']) == {'resnet'}
  assert variables['params']['resnet']['head']['kernel'].shape == (32, 5)
  video = _video(SHAPE)
  out = model.apply(variables, video, train=False)
  np.testing.assert_allclose(out, _resnet2d().apply(_sub(variables, 'resnet'), video,
                                                    train=False), atol=1e-6)
  np.testing.assert_allclose(model.apply(variables, video[:, ::-1], train=False), out, atol=1e-5)


def test_early_fusion_stacks_frames_into_channels():
  """The first kernel has 3T = 12 input channels; the output is ResNet2D's on the image whose
  channel 3t + c is frame t's channel c (stacked in numpy); frame order matters."""
  model = fusion.EarlyFusion(**SMALL)
  variables = _random_variables(model, SHAPE, scale=SCALE)
  assert variables['params']['resnet']['stem_conv']['kernel'].shape == (7, 7, 12, 4)
  video = _video(SHAPE)
  out = model.apply(variables, video, train=False)
  stacked = np.zeros((2, 16, 16, 12), np.float32)
  for t in range(4):
    for c in range(3):
      stacked[..., 3 * t + c] = video[:, t, ..., c]
  np.testing.assert_allclose(out, _resnet2d().apply(_sub(variables, 'resnet'), stacked,
                                                    train=False), atol=1e-6)
  reversed_out = model.apply(variables, video[:, ::-1], train=False)
  assert np.abs(reversed_out - out).max() > 1e-2 * np.abs(out).max()


def test_shapes_dtypes_and_logical_names():
  """bfloat16 compute: float32 logits and params; every parameter carries logical names."""
  for model in (fusion.SingleFrame(**SMALL, dtype=jnp.bfloat16),
                fusion.LateFusion(**SMALL, hidden_width=8, dtype=jnp.bfloat16),
                fusion.LateFusion(**SMALL, fusion='pool', dtype=jnp.bfloat16),
                fusion.EarlyFusion(**SMALL, dtype=jnp.bfloat16)):
    boxed = jax.eval_shape(lambda m=model: m.init(jax.random.key(0), jnp.zeros(SHAPE),
                                                  train=False))
    assert {p.dtype for p in jax.tree.leaves(nn.unbox(boxed['params']))} == {
        jnp.dtype(jnp.float32)}
    leaves = jax.tree.leaves(boxed['params'], is_leaf=lambda x: isinstance(x, nn.Partitioned))
    assert all(isinstance(p, nn.Partitioned) for p in leaves), type(model).__name__
    logits = jax.eval_shape(lambda v, m=model: m.apply(v, jnp.zeros(SHAPE), train=False),
                            nn.unbox(boxed))
    assert (logits.shape, logits.dtype) == ((2, 5), jnp.float32), type(model).__name__


@pytest.mark.parametrize('path', PRESETS)
def test_presets(path):
  """Paper settings, parameter counts from torchvision's ResNet-18 (11,176,512 without its fc)
  and the tiny versions (same model fields but size)."""
  full, tiny = _preset(path), _preset(path, 'tiny')
  assert (full.dataset.name, full.model.num_classes, full.train.batch_size) == ('sports1m', 487, 32)
  assert full.optimizer.to_dict() == dict(
      name='sgd', learning_rate=1e-3, end_learning_rate=0.0, warmup_steps=0, momentum=0.9,
      nesterov=False, weight_decay=5e-4, grad_clip_norm=float('inf'))
  assert (full.dataset.crop_size, full.dataset.stride, full.dataset.eval_clips) == (170, 1, 20)
  assert tiny.optimizer.to_dict() == dict(full.optimizer.to_dict(), warmup_steps=60,
                                          learning_rate=0.1)
  assert (tiny.dataset.name, tiny.dataset.num_frames, tiny.model.num_classes,
          tiny.model.base_width, tiny.train.num_steps) == ('synthetic_motion', 8, 10, 8, 300)
  for key in set(full.model) - {'num_classes', 'base_width', 'hidden_width'}:
    assert tiny.model[key] == full.model[key], key
  model, ds = models.build(full.model), full.dataset
  params = _abstract(model, (1, ds.num_frames, 170, 170, 3))['params']
  head = 512 * 487 + 487
  if 'single' in path:
    assert ds.num_frames == 1 and isinstance(model, fusion.SingleFrame)
    assert _num_params(params) == RESNET18_TRUNK + head
  elif 'late' in path:
    assert ds.num_frames == 16 and model.frame_indices(16).tolist() == [0, 15]
    assert model.fusion == 'concat' and _preset(path, 'pool').model.fusion == 'pool'
    assert _preset(path, 'tiny,pool').model.fusion == 'pool'
    fc = 2 * 512 * 4096 + 4096
    assert _num_params(params) == RESNET18_TRUNK + fc + 4096 * 487 + 487
  else:  # The stem sees 30 channels: 7 * 7 * 27 * 64 more weights than ResNet-18's.
    assert ds.num_frames == 10
    assert params['resnet']['stem_conv']['kernel'].shape == (7, 7, 30, 64)
    assert _num_params(params) == RESNET18_TRUNK + 7 * 7 * 27 * 64 + head
  small = models.build(tiny.model)
  shape = (2, tiny.dataset.num_frames, tiny.dataset.crop_size, tiny.dataset.crop_size, 3)
  logits = jax.eval_shape(lambda v: small.apply(v, jnp.zeros(shape), train=False),
                          _abstract(small, shape))
  assert (logits.shape, logits.dtype) == ((2, 10), jnp.float32)
  with pytest.raises(ValueError, match="Unknown preset argument 'huge'"):
    _preset(path, 'huge')


@pytest.mark.parametrize('name, fields, match', [
    ('late_fusion', dict(fusion='max'), r"config.model.fusion='max' .* 'concat' or 'pool'"),
    ('late_fusion', dict(num_fusion_frames=-1), r'config.model.num_fusion_frames=-1 .* >= 0'),
    ('late_fusion', dict(hidden_width=0), r'config.model.hidden_width=0 must be a positive int'),
    ('single_frame', dict(num_classes=0), r'config.model.num_classes=0 must be a positive int'),
    ('early_fusion', dict(depth=20), r'config.model.depth=20 is not a ResNet depth'),
])
def test_config_errors(name, fields, match):
  config = _preset(f'configs/cnn/{name}.py').model
  config.update(fields)
  with pytest.raises(ValueError, match=match):
    models.build(config)


def test_input_errors():
  for model in (fusion.SingleFrame(**SMALL), fusion.LateFusion(**SMALL),
                fusion.EarlyFusion(**SMALL)):
    with pytest.raises(ValueError, match=rf'{type(model).__name__} takes videos'):
      _abstract(model, (2, 16, 16, 3))
  with pytest.raises(ValueError, match=r'num_fusion_frames=6 exceeds the clip length 4'):
    _abstract(fusion.LateFusion(**SMALL, num_fusion_frames=6), SHAPE)
