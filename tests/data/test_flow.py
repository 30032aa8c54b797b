"""Optical flow (data/flow.py) and the pipeline's 'flow' (config.dataset.flow): Farneback recovers a
known translation, is zero on a static video and mirrors with a flip; pipeline flow is the flow of
the clip's own frames and crop, is negated in x by a flip, pads with zeros, shards on the mesh,
and on synthetic_motion points where each class's bar moves."""
import jax
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from tests.helpers import tiny_config
from vivit_jax import data
from vivit_jax.data import flow, pipeline, synthetic_motion
from vivit_jax.train import loop, sharding

MARGIN = 12  # px: Farneback's 15 px window and border weights bias the flow near the border.


def _texture_video(shift, num_frames=3, size=64, seed=0) -> np.ndarray:
  """(T, size, size, 3) uint8: a smooth random RGB texture (12 low-frequency plane waves per
  channel) that moves by `shift` = (dx, dy) px per frame, exactly, sub-pixel shifts included."""
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[:size, :size].astype(np.float64)
  channels = []
  for _ in range(3):
    k, phase, amp = (rng.uniform(-0.35, 0.35, (12, 2)), rng.uniform(0, 2 * np.pi, 12),
                     rng.uniform(0.5, 1.0, 12))
    channels.append([sum(a * np.cos(kx * (x - t * shift[0]) + ky * (y - t * shift[1]) + p)
                         for (kx, ky), p, a in zip(k, phase, amp)) for t in range(num_frames)])
  video = np.stack(channels, axis=-1)  # (T, size, size, 3).
  video = (video - video.min()) / (video.max() - video.min()) * 255
  return np.round(video).astype(np.uint8)


@pytest.mark.parametrize('shift', [(2.0, -1.0), (0.5, 0.25)])
def test_farneback_recovers_a_translation(shift):
  field = flow.farneback(_texture_video(shift))
  assert field.shape == (2, 64, 64, 2) and field.dtype == np.float32
  interior = field[:, MARGIN:-MARGIN, MARGIN:-MARGIN].reshape(-1, 2)
  error = np.abs(interior - shift).max(axis=0)
  assert np.all(error < 0.1), error  # Measured: 0.014 / 0.009 px for (2, -1); 0.035 / 0.022.
  np.testing.assert_allclose(interior.mean(axis=0), shift, atol=0.01)


def test_static_video_has_zero_flow():
  video = np.repeat(_texture_video((0, 0), num_frames=1), 4, axis=0)
  field = flow.farneback(video)
  assert field.shape == (3, 64, 64, 2)
  interior = (slice(None), slice(MARGIN, -MARGIN), slice(MARGIN, -MARGIN))
  assert np.abs(field[interior]).max() < 1e-3  # Measured ~1e-4 (~0.1 px within 8 px of the
  assert np.abs(field).max() < 0.5  # border, where Farneback's border weights bias it).
  assert np.abs(flow.tf_flow(tf.constant(video))[interior]).max() < 1e-3 / flow.BOUND


def test_mirrored_video_mirrors_the_flow_with_dx_negated():
  video = _texture_video((1.5, -0.5))
  field, mirrored = flow.farneback(video), flow.farneback(video[:, :, ::-1])
  np.testing.assert_allclose(mirrored[:, :, ::-1] * [-1, 1], field, atol=1e-3)
  assert field[:, MARGIN:-MARGIN, MARGIN:-MARGIN, 0].mean() > 1.4


def test_scale_clips_to_20_px_and_divides_by_20():
  px = np.array([-45.0, -20.0, -3.0, 0.0, 7.0, 20.0, 33.0], np.float32)
  expected = [-1.0, -1.0, -0.15, 0.0, 0.35, 1.0, 1.0]
  np.testing.assert_allclose(flow.scale(px), expected, rtol=1e-6)
  np.testing.assert_allclose(flow.scale(tf.constant(px)), expected, rtol=1e-6)


def test_tf_flow_is_scaled_farneback_with_static_shapes():
  video = _texture_video((2.0, -1.0), num_frames=3)
  frames = tf.constant(video)
  field = tf.function(flow.tf_flow)(frames)
  assert field.shape == (2, 64, 64, 2) and field.dtype == tf.float32
  np.testing.assert_allclose(field, flow.scale(flow.farneback(video)), atol=1e-6)
  np.testing.assert_allclose(field[:, MARGIN:-MARGIN, MARGIN:-MARGIN], np.broadcast_to(
      [0.1, -0.05], (2, 40, 40, 2)), atol=0.005)
  spec = tf.data.Dataset.from_tensors(frames).map(flow.tf_flow).element_spec
  assert spec.shape == (2, 64, 64, 2) and spec.dtype == tf.float32


def test_bad_frames_name_the_requirement():
  with pytest.raises(ValueError, match=r'uint8 \(T, H, W, C\) with C = 1 \(grey\) or 3'):
    flow.farneback(np.zeros((2, 8, 8, 4), np.uint8))
  with pytest.raises(ValueError, match='at least 2 frames'):
    flow.farneback(np.zeros((1, 8, 8, 3), np.uint8))


@pytest.fixture
def config(synthetic_data_dir):
  """tiny_config's dataset section (4 frames at stride 2, 16x16 crops) with flow on."""
  config = tiny_config().dataset
  config.update(data_dir=synthetic_data_dir, shuffle_buffer=256, flow=True)
  return config


def test_train_and_eval_batches_carry_flow(config):
  assert tiny_config().dataset.flow is False  # Off by default.
  train = next(data.make_train_iterator(config, global_batch_size=16, seed=0))
  assert set(train) == {'video', 'label', 'flow'}
  assert train['flow'].shape == (16, 3, 16, 16, 2) and train['flow'].dtype == np.float32
  assert -1 <= train['flow'].min() and train['flow'].max() <= 1 and train['flow'].any()
  again = next(data.make_train_iterator(config, global_batch_size=16, seed=0))
  np.testing.assert_array_equal(train['flow'], again['flow'])

  config.eval_split = 'test[:20]'  # 2 batches of 16: the last has 12 padding rows.
  batches = list(data.make_eval_iterator(config, global_batch_size=16))
  videos, _ = tfds.as_numpy(data.get_builder(config).as_dataset(
      split='test[:20]', batch_size=-1, as_supervised=True))
  field = np.concatenate([b['flow'] for b in batches])
  assert field.shape == (32, 3, 16, 16, 2) and field.dtype == np.float32
  assert not field[20:].any() and np.all(field[:20].any(axis=(1, 2, 3, 4)))
  # The flow of the centre clip's own uint8 frames (start 5 of 10, stride 2), cropped like it.
  start, offset = (16 - 7 + 1) // 2, (32 - 16 + 1) // 2
  expected = [flow.scale(flow.farneback(v[start:start + 7:2]))[:, offset:offset + 16,
                                                              offset:offset + 16] for v in videos]
  np.testing.assert_allclose(field[:20], np.stack(expected), atol=1e-6)


def test_flip_mirrors_the_flow_and_negates_dx(config):
  builder = data.get_builder(config)
  example = next(iter(builder.as_dataset(split='test[:1]', decoders={
      'video': tfds.decode.SkipDecoding()})))
  view = lambda flip: pipeline._view(  # noqa: E731
      example, tf.constant([0.3, 0.2, 0.9]), tf.constant(flip),
      feature=builder.info.features['video'], dataset_config=config)
  plain, flipped = view(False), view(True)
  np.testing.assert_array_equal(flipped['video'], plain['video'].numpy()[:, :, ::-1])
  np.testing.assert_array_equal(flipped['flow'], plain['flow'].numpy()[:, :, ::-1] * [-1, 1])
  assert np.abs(plain['flow'].numpy()[..., 0]).max() > 0.02  # Not a trivially zero dx.


def test_flow_needs_two_frames(config):
  config.num_frames = 1
  with pytest.raises(ValueError, match=r'config.dataset.flow needs at least 2 frames.*'
                                       r'config.dataset.num_frames=1'):
    data.make_train_iterator(config, global_batch_size=16, seed=0)


def test_flow_points_where_the_bar_moves(config):
  """Mean flow over the bar (pixels on its side of mid-grey) is each class's motion, per clip."""
  config.update(eval_split='test[:200]', num_frames=8, stride=2, crop_size=28)  # Default clips.
  batches = list(data.make_eval_iterator(config, global_batch_size=40))
  video, label = (np.concatenate([b[k] for b in batches]) for k in ('video', 'label'))
  field = np.concatenate([b['flow'] for b in batches]) * flow.BOUND  # px per 2 frames.
  grey = video.mean(axis=-1)[:, :-1]  # Flow t lives on frame t's pixels.
  background = np.sign(np.median(grey, axis=(1, 2, 3)))[:, None, None, None]
  bar = background * grey < -0.2  # >= 0.1 of the range past mid-grey, away from the background.
  mean = (field * bar[..., None]).sum(axis=(1, 2, 3)) / bar.sum(axis=(1, 2, 3))[:, None]
  directions = {'right': (1, 0), 'left': (-1, 0), 'up': (0, -1), 'down': (0, 1)}  # (x, y down).
  speeds = {'slow': (0.6, 1.6), 'fast': (2.0, 3.2)}  # 0.4-0.7 and 1.1-1.5 px/frame, x 2 frames.
  for index, name in enumerate(synthetic_motion.CLASS_NAMES):
    clips = mean[label == index]
    assert len(clips) >= 10, name
    if name in ('grow', 'shrink'):
      assert np.all(np.linalg.norm(clips, axis=1) < 0.6), (name, clips)
      continue
    direction, speed = name.split('_')
    along, across = clips @ np.array(directions[direction]), clips @ np.array(
        directions[direction][::-1])
    low, high = speeds[speed]  # Measured: slow 0.73-1.41, fast 2.26-3.03, |across| <= 0.07.
    assert np.all((low < along) & (along < high)), (name, along)
    assert np.all(np.abs(across) < 0.3), (name, across)


def test_a_flow_batch_shards_and_trains(config):
  """put_batch shards a 5-D 'flow' over the batch axis; the shared train step ignores it."""
  full = tiny_config()
  full.dataset = config
  full.model.update(num_layers=1, stochastic_depth=0.0)  # Only the batch's keys matter here.
  batch = next(data.make_train_iterator(config, global_batch_size=16, seed=0))
  mesh = sharding.make_mesh(full.mesh)  # 8 simulated devices on 'data'.
  rules = tuple(full.sharding_rules)
  batch_sharding = sharding.batch_sharding(mesh, rules)
  on_mesh = sharding.put_batch(batch, batch_sharding)
  assert on_mesh['flow'].shape == (16, 3, 16, 16, 2)
  assert {s.data.shape for s in on_mesh['flow'].addressable_shards} == {(2, 3, 16, 16, 2)}
  np.testing.assert_array_equal(jax.device_get(on_mesh['flow']), batch['flow'])

  exp = loop.plan(full, mesh, (8, 4, 16, 16, 3))
  _, metrics = exp.train_step()(exp.make_state(), on_mesh)
  assert metrics['finite'] == 1 and metrics['count'] == 16
