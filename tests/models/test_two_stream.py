"""The two-stream network (vivit_jax/models/two_stream.py), its preset, and the flow wiring of the
shared trainer (loop.setup's init and checks, the classification task's `flow=`)."""
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.models.test_cnn3d import _num_params, _preset, _random_variables, _video
from tests.models.test_fusion import RESNET18_TRUNK, SCALE, SMALL
from vivit_jax import data, models
from vivit_jax.models import resnet, two_stream
from vivit_jax.train import loop, sharding

PRESET = 'configs/cnn/two_stream.py'
VIDEO, FLOW = (2, 4, 16, 16, 3), (2, 3, 16, 16, 2)


def _streams():
  """Random variables of the appearance (3 channels) and motion (2 (T - 1) = 6) ResNet2Ds and the
  two-stream variables made of them (so their paths are the two-stream model's)."""
  net = resnet.ResNet2D(**SMALL)
  appearance = _random_variables(net, (1, 16, 16, 3), seed=0, scale=SCALE)
  motion = _random_variables(net, (1, 16, 16, 6), seed=1, scale=SCALE)
  fused = {col: {'appearance': appearance[col], 'motion': motion[col]} for col in appearance}
  return net, appearance, motion, fused


@pytest.mark.parametrize('weight', [0.3, 0.0, 1.0])
def test_fused_scores_match_the_two_streams(weight):
  """logits = log((1 - w) softmax(appearance(middle frame)) + w softmax(motion(stacked flow))),
  the motion input stacked in numpy (channel 2t + d = flow t's component d)."""
  net, appearance, motion, variables = _streams()
  model = two_stream.TwoStream(**SMALL, fusion_weight=weight)
  video, flow = _video(VIDEO), _video(FLOW, seed=2)
  out = model.apply(variables, video, flow=flow, train=False)
  stacked = np.zeros((2, 16, 16, 6), np.float32)
  for t in range(3):
    for d in range(2):
      stacked[..., 2 * t + d] = flow[:, t, ..., d]
  p_app = jax.nn.softmax(net.apply(appearance, video[:, 2], train=False))
  p_mot = jax.nn.softmax(net.apply(motion, stacked, train=False))
  expected = np.log((1 - weight) * np.asarray(p_app, np.float64) +
                    weight * np.asarray(p_mot, np.float64))
  assert (out.shape, out.dtype) == ((2, 5), jnp.float32)
  np.testing.assert_allclose(out, expected, atol=2e-5)
  assert np.abs(p_app - p_mot).max() > 0.05  # The two streams disagree: the weight matters.


def test_streams_see_one_frame_and_the_stacked_flow():
  """The motion stem has 2 (T - 1) = 6 input channels, the appearance stem 3; frames other than
  the middle one do not matter; the order of the flow fields does."""
  model = two_stream.TwoStream(**SMALL)
  abstract = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(VIDEO),
                                               flow=jnp.zeros(FLOW), train=False))
  params = nn.unbox(abstract['params'])
  assert params['motion']['stem_conv']['kernel'].shape == (7, 7, 6, 4)
  assert params['appearance']['stem_conv']['kernel'].shape == (7, 7, 3, 4)
  *_, variables = _streams()
  video, flow = _video(VIDEO), _video(FLOW, seed=2)
  out = model.apply(variables, video, flow=flow, train=False)
  others = video.at[:, jnp.array([0, 1, 3])].set(_video((2, 3, 16, 16, 3), seed=3))
  np.testing.assert_allclose(model.apply(variables, others, flow=flow, train=False), out,
                             atol=1e-6)
  reversed_flow = model.apply(variables, video, flow=flow[:, ::-1], train=False)
  assert np.abs(reversed_flow - out).max() > 1e-3


def test_preset():
  """UCF-101 with 11-frame clips (L = 10 flow fields, 20 motion channels); parameters: two
  ResNet-18 trunks (torchvision's count without its fc), two 101-way heads and the motion stem's
  17 extra input channels."""
  full, tiny = _preset(PRESET), _preset(PRESET, 'tiny')
  assert (full.dataset.name, full.dataset.num_frames, full.dataset.stride, full.dataset.flow) == (
      'ucf101', 11, 1, True)
  assert (full.train.batch_size, full.train.num_steps, full.optimizer.learning_rate) == (
      256, 80_000, 1e-2)
  assert (full.model.fusion_weight, full.model.dropout_rate) == (0.5, 0.9)
  model = models.build(full.model)
  abstract = jax.eval_shape(lambda: model.init(
      jax.random.key(0), jnp.zeros((1, 11, 224, 224, 3)), flow=jnp.zeros((1, 10, 224, 224, 2)),
      train=False))
  params = nn.unbox(abstract['params'])
  assert params['motion']['stem_conv']['kernel'].shape == (7, 7, 20, 64)
  assert _num_params(params) == 2 * (RESNET18_TRUNK + 512 * 101 + 101) + 7 * 7 * 17 * 64
  assert (tiny.dataset.name, tiny.dataset.flow, tiny.dataset.num_frames, tiny.model.num_classes,
          tiny.model.base_width, tiny.train.num_steps) == ('synthetic_motion', True, 8, 10, 8, 300)
  assert tiny.optimizer.to_dict() == dict(full.optimizer.to_dict(), warmup_steps=60)
  for key in set(full.model) - {'num_classes', 'base_width'}:
    assert tiny.model[key] == full.model[key], key


@pytest.mark.slow
def test_tiny_preset_trains(synthetic_data_dir, tmp_path):
  """loop.setup inits the tiny two-stream preset (cut to depth 10) with a dummy flow; batches from
  synthetic_motion carry 'flow' (16, 7, 28, 28, 2), which the shared train step passes on: the
  first loss is ln(10) (zero heads), 3 steps move both streams' stems and BN statistics, and an
  eval step gives probabilities."""
  config = _preset(PRESET, 'tiny')
  config.dataset.data_dir = synthetic_data_dir
  config.model.depth = 10
  config.train.update(batch_size=16, eval_batch_size=16)
  exp = loop.setup(config, str(tmp_path))
  exp.ckpt.close()
  before = jax.device_get((exp.state.params, exp.state.batch_stats))
  assert before[0]['motion']['stem_conv']['kernel'].shape == (7, 7, 14, 8)
  train_step = exp.train_step()
  batches = data.make_train_iterator(config.dataset, global_batch_size=16, seed=0)
  state, losses = exp.state, []
  for _ in range(3):
    batch = next(batches)
    assert batch['flow'].shape == (16, 7, 28, 28, 2)
    state, metrics = train_step(state, sharding.put_batch(batch, exp.batch_sharding))
    assert float(metrics['finite']) == 1.0
    losses.append(float(metrics['loss_sum'] / metrics['count']))
  assert int(state.step) == 3 and losses[0] == pytest.approx(math.log(10), rel=1e-5)
  params, stats = jax.device_get((state.params, state.batch_stats))
  for stream in ('appearance', 'motion'):
    assert not np.allclose(params[stream]['stem_conv']['kernel'],
                           before[0][stream]['stem_conv']['kernel']), stream
    assert not np.allclose(stats[stream]['stem_bn']['mean'],
                           before[1][stream]['stem_bn']['mean']), stream
  eval_step = exp.eval_step()
  batch = next(data.make_eval_iterator(config.dataset, global_batch_size=16))
  out = jax.device_get(eval_step(state, sharding.put_batch(batch, exp.batch_sharding)))
  assert out['probs'].shape == (16, 10)
  np.testing.assert_allclose(out['probs'].sum(-1), 1.0, atol=1e-5)


@pytest.mark.parametrize('preset, flow, match', [
    (PRESET, False, r"'two_stream' takes 'flow'.*set --config.dataset.flow=True"),
    ('configs/cnn/early_fusion.py', True,
     r"'early_fusion' takes no 'flow'.*set --config.dataset.flow=False"),
])
def test_setup_flow_errors(synthetic_data_dir, tmp_path, preset, flow, match):
  config = _preset(preset, 'tiny')
  config.dataset.update(data_dir=synthetic_data_dir, flow=flow)
  with pytest.raises(ValueError, match=match):
    loop.setup(config, str(tmp_path))


def test_config_and_input_errors():
  config = _preset(PRESET).model
  config.fusion_weight = 1.5
  with pytest.raises(ValueError, match=r'config.model.fusion_weight=1.5 must be a number in '
                                       r'\[0, 1\]'):
    models.build(config)
  model = two_stream.TwoStream(**SMALL)
  with pytest.raises(ValueError, match=r'needs flow \(B, T - 1, H, W, 2\) = \(2, 3, 16, 16, 2\) '
                                       r'for video .* got \(2, 4, 16, 16, 2\)'):
    jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(VIDEO),
                                      flow=jnp.zeros((2, 4, 16, 16, 2)), train=False))
  with pytest.raises(ValueError, match=r'at least 2 frames'):
    jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((2, 1, 16, 16, 3)),
                                      flow=jnp.zeros((2, 0, 16, 16, 2)), train=False))
  with pytest.raises(ValueError, match=r'TwoStream takes videos'):
    jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((2, 16, 16, 3)),
                                      flow=jnp.zeros(FLOW), train=False))
