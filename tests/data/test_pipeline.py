"""The input pipeline: batch format, determinism, exact resume, eval coverage and padding, centre
clips, flips, per-process shards and the errors that name the config field."""
import hashlib
import itertools

import jax
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from tests.helpers import tiny_config
from vivit_jax import data
from vivit_jax.data import pipeline


@pytest.fixture
def config(synthetic_data_dir):
  """tiny_config's dataset section (4 frames at stride 2, 16x16 crops) on the session's build."""
  config = tiny_config().dataset
  config.update(data_dir=synthetic_data_dir, shuffle_buffer=256)
  return config


def _full_view(config, split):
  """`config` reading whole clips (16 frames, 32x32, no flip) of `split` for training and eval."""
  config.update(num_frames=16, stride=1, crop_size=32, flip=False, train_split=split,
                eval_split=split)
  return config


def _take(iterator, n):
  return list(itertools.islice(iterator, n))


def _digests(batches):
  """Digests of the real (mask 1 where there is a mask) videos of `batches`."""
  return [hashlib.sha1(video.tobytes()).hexdigest()
          for batch in batches for video, keep in zip(batch['video'], batch.get(
              'mask', np.ones(len(batch['video'])))) if keep]


def _processes(monkeypatch, count, index):
  """Makes this process look like process `index` of `count` (with no runtime between them,
  every simulated process takes its own view of whether the dataset is built)."""
  monkeypatch.setattr(jax, 'process_count', lambda: count)
  monkeypatch.setattr(jax, 'process_index', lambda: index)
  monkeypatch.setattr(pipeline, '_all_agree', lambda prepared: prepared)


def test_train_batches_shape_dtype_and_range(config):
  batch = next(data.make_train_iterator(config, global_batch_size=16, seed=0))
  assert batch['video'].shape == (16, 4, 16, 16, 3) and batch['video'].dtype == np.float32
  assert batch['label'].shape == (16,) and batch['label'].dtype == np.int32
  assert set(batch) == {'video', 'label'} and np.all((0 <= batch['label']) & (batch['label'] < 10))
  assert -1 <= batch['video'].min() < -0.3 and 0.3 < batch['video'].max() <= 1  # mean = std = 0.5.


def test_train_is_deterministic_given_the_seed(config):
  first, again, other = (_take(data.make_train_iterator(config, global_batch_size=16, seed=s), 3)
                         for s in (0, 0, 1))
  for a, b in zip(first, again):
    np.testing.assert_array_equal(a['video'], b['video'])
    np.testing.assert_array_equal(a['label'], b['label'])
  assert not np.array_equal(first[0]['video'], other[0]['video'])


def test_start_step_equals_skipping_batches(config):
  config.train_split = 'test[:160]'  # 10 batches an epoch: resuming at 23 crosses two reshuffles.
  fresh = _take(data.make_train_iterator(config, global_batch_size=16, seed=3), 25)
  resumed = _take(data.make_train_iterator(config, global_batch_size=16, seed=3, start_step=23), 2)
  for a, b in zip(fresh[23:], resumed):
    np.testing.assert_array_equal(a['video'], b['video'])
    np.testing.assert_array_equal(a['label'], b['label'])
  assert not np.array_equal(fresh[0]['video'], fresh[10]['video'])  # Epochs are reshuffled.


def test_eval_covers_the_split_once_with_centre_clips(config):
  builder = data.get_builder(config)
  videos, labels = tfds.as_numpy(
      builder.as_dataset(split='test', batch_size=-1, as_supervised=True))
  n = len(labels)
  batches = list(data.make_eval_iterator(config, global_batch_size=48))
  assert len(batches) == -(-n // 48) and all(len(b['mask']) == 48 for b in batches)
  mask = np.concatenate([b['mask'] for b in batches])
  np.testing.assert_array_equal(mask, np.arange(len(batches) * 48) < n)  # Padding at the end.
  video = np.concatenate([b['video'] for b in batches])
  assert not video[n:].any()
  np.testing.assert_array_equal(np.concatenate([b['label'] for b in batches])[:n], labels)
  start, offset = (16 - 7 + 1) // 2, (32 - 16 + 1) // 2  # Centre of 10 clip starts, 17 offsets.
  centre = videos[:, start:start + 7:2, offset:offset + 16, offset:offset + 16]
  np.testing.assert_allclose(video[:n], (centre.astype(np.float32) / 255 - 0.5) / 0.5, atol=1e-6)


def test_flip_only_when_configured(config):
  _full_view(config, 'test[:64]')  # Only flips can make a train clip differ from the eval clip.
  clips = set(_digests(data.make_eval_iterator(config, global_batch_size=16)))
  unflipped = _take(data.make_train_iterator(config, global_batch_size=16, seed=0), 4)
  assert sorted(_digests(unflipped)) == sorted(clips)  # One epoch: each clip once, as it is.
  config.flip = True
  flipped = _take(data.make_train_iterator(config, global_batch_size=16, seed=0), 4)
  mirrored = [dict(b, video=b['video'][:, :, :, ::-1]) for b in flipped]
  as_is, mirror = _digests(flipped), _digests(mirrored)
  assert all((a in clips) != (m in clips) for a, m in zip(as_is, mirror))
  assert 16 < sum(m in clips for m in mirror) < 48  # About half flipped.


def test_processes_read_disjoint_shards_that_cover_the_split(config, monkeypatch):
  _full_view(config, 'test[:101]')
  everything = _digests(data.make_eval_iterator(config, global_batch_size=16))
  shards, train_epochs = [], []
  for index in range(2):
    _processes(monkeypatch, 2, index)
    batches = list(data.make_eval_iterator(config, global_batch_size=16))
    assert len(batches) == 7 and all(b['video'].shape[0] == 8 for b in batches)  # ceil(51 / 8).
    shards.append(_digests(batches))
    train = data.make_train_iterator(config, global_batch_size=16, seed=0)
    train_epochs.append(_digests(_take(train, 6)))  # 48 of this shard's ~50 clips, unflipped.
  assert sorted(map(len, shards)) == [50, 51] and not set(shards[0]) & set(shards[1])
  assert sorted(shards[0] + shards[1]) == sorted(everything)
  for shard, epoch in zip(shards, train_epochs):
    assert set(epoch) <= set(shard)


def test_batch_must_divide_over_processes(config, monkeypatch):
  _processes(monkeypatch, 3, 0)
  with pytest.raises(ValueError, match='16 is not divisible by the 3 JAX processes'):
    data.make_train_iterator(config, global_batch_size=16, seed=0)


def test_unknown_dataset_name_is_a_clear_error(config):
  config.name = 'no_such_dataset'
  with pytest.raises(ValueError, match=r"Unknown dataset 'no_such_dataset' \(config.dataset.name"):
    data.get_builder(config)


def test_data_dir_that_is_a_file_is_a_clear_error(config, tmp_path):
  config.data_dir = str(tmp_path / 'a_file')
  (tmp_path / 'a_file').write_text('')
  with pytest.raises(ValueError, match=f"'{config.data_dir}'.*config.dataset.data_dir.*not a dir"):
    data.get_builder(config)


def test_unknown_split_lists_the_available_ones(config):
  config.train_split = 'validation'
  with pytest.raises(ValueError, match=r"'validation' \(config.dataset.train_split\).*test, train"):
    data.make_train_iterator(config, global_batch_size=16, seed=0)
  with pytest.raises(ValueError, match=r"'validation' \(the split argument\).*test, train"):
    data.make_eval_iterator(config, global_batch_size=16, split='validation')


def test_crop_larger_than_the_frames_is_a_clear_error(config):
  config.crop_size = 40
  with pytest.raises(ValueError, match='config.dataset.crop_size=40 exceeds the 32x32 frames'):
    data.make_eval_iterator(config, global_batch_size=16)


def test_video_features_decode_only_the_clip_frames():
  feature = tfds.features.Video(shape=(None, 8, 8, 3))
  video = np.random.default_rng(0).integers(0, 256, size=(6, 8, 8, 3), dtype=np.uint8)
  encoded = tf.constant(feature.encode_example(video))  # One PNG per frame.
  frames = pipeline._decode_frames(feature, encoded, lambda length: tf.range(1, length, 2))
  np.testing.assert_array_equal(frames.numpy(), video[1::2])


def _multi_view(config, split='test[:5]', clips=3, crops=3):
  config.update(eval_split=split, eval_clips=clips, eval_crops=crops)
  return config


def _rows(batches):
  """The real (mask 1) rows of eval `batches`, concatenated: {'video', 'label', 'video_id'}."""
  keep = np.concatenate([b['mask'] for b in batches]) > 0
  return {k: np.concatenate([b[k] for b in batches])[keep] for k in ('video', 'label', 'video_id')}


def test_eval_views_are_time_major_spaced_fractions():
  config = tiny_config().dataset
  _multi_view(config, clips=3, crops=2)
  assert pipeline.eval_views(config) == [(t, c, 0.5) for t in (0, .5, 1) for c in (0, 1)]
  _multi_view(config, clips=1, crops=1)
  assert pipeline.eval_views(config) == [(.5, .5, .5)]  # The centre clip and crop.


def test_eval_yields_every_view_of_each_video_consecutively(config):
  _multi_view(config)  # 3 clips x 3 crops of 5 videos: 45 views in 6 batches of 8.
  videos, labels = tfds.as_numpy(data.get_builder(config).as_dataset(
      split='test[:5]', batch_size=-1, as_supervised=True))
  batches = list(data.make_eval_iterator(config, global_batch_size=8))
  assert len(batches) == 6 and all(len(b['mask']) == 8 for b in batches)
  mask = np.concatenate([b['mask'] for b in batches])
  np.testing.assert_array_equal(mask, np.arange(48) < 45)
  assert mask.sum() == 5 * 9 and set(batches[0]) == {'video', 'label', 'mask', 'video_id'}
  rows = _rows(batches)
  np.testing.assert_array_equal(rows['label'], np.repeat(labels, 9))
  ids = rows['video_id'].reshape(5, 9)
  assert (ids == ids[:, :1]).all() and len(set(ids[:, 0])) == 5
  # 16 frames, clips of 7 (4 at stride 2): starts 0 (first), 5 (middle of 0..9), 9 (last); the
  # 32x32 frames are square, so the 16-crops go along y at 0, 8, 16, centred in x.
  expected = np.stack([videos[:, t:t + 7:2, c:c + 16, 8:24] for t in (0, 5, 9)
                       for c in (0, 8, 16)], axis=1).reshape(45, 4, 16, 16, 3)
  np.testing.assert_allclose(rows['video'], (expected / 255 - 0.5) / 0.5, atol=1e-6)


def test_eval_rows_do_not_depend_on_the_batch_size(config):
  _multi_view(config, split='test[:3]', clips=2, crops=3)  # 18 views.
  by_size = {b: list(data.make_eval_iterator(config, global_batch_size=b)) for b in (5, 32)}
  assert [len(v) for v in by_size.values()] == [4, 1]  # ceil(18 / 5), ceil(18 / 32).
  small, large = (_rows(v) for v in by_size.values())
  for key in small:
    np.testing.assert_array_equal(small[key], large[key])
  assert len(small['label']) == 18
  padding = np.concatenate([b['video'] for b in by_size[32]])[18:]
  assert padding.shape[0] == 14 and not padding.any()


def test_eval_views_over_processes_have_distinct_ids_and_cover_the_split(config, monkeypatch):
  _multi_view(config, clips=2, crops=1)  # 5 videos, 2 views each, over 2 processes.
  everything = _rows(list(data.make_eval_iterator(config, global_batch_size=4)))
  rows, lengths = [], []
  for index in range(2):
    _processes(monkeypatch, 2, index)
    batches = list(data.make_eval_iterator(config, global_batch_size=4))
    lengths.append(len(batches))  # Views of 3 videos (the larger shard) in batches of 2.
    rows.append(_rows(batches))
  assert lengths == [3, 3]
  assert sorted(len(r['label']) for r in rows) == [4, 6]  # sum(mask) = 5 videos x 2 views.
  ids = [set(r['video_id'].tolist()) for r in rows]
  assert not ids[0] & ids[1] and len(ids[0] | ids[1]) == 5
  np.testing.assert_array_equal(
      np.sort(np.concatenate([r['video'] for r in rows]).reshape(10, -1), axis=0),
      np.sort(everything['video'].reshape(10, -1), axis=0))


@pytest.mark.parametrize('field', ['eval_clips', 'eval_crops'])
def test_no_eval_views_is_a_clear_error(config, field):
  config[field] = 0
  with pytest.raises(ValueError, match=f'config.dataset.{field}=0 must be at least 1'):
    data.make_eval_iterator(config, global_batch_size=8)


def _coordinates(length, height, width):
  """A video whose pixel (t, y, x) holds (t, y, x) in its 3 channels."""
  return np.stack(np.meshgrid(np.arange(length), np.arange(height), np.arange(width),
                              indexing='ij'), axis=-1).astype(np.uint8)


@pytest.fixture(scope='module')
def sized_videos_dir(tmp_path_factory):
  """A TFDS dataset of `Video` features of different lengths and frame shapes."""
  videos = [_coordinates(12, 20, 40), _coordinates(9, 40, 20), _coordinates(5, 16, 24)]
  features = tfds.features.FeaturesDict({
      'video': tfds.features.Video(shape=(None, None, None, 3)),
      'label': tfds.features.ClassLabel(num_classes=3)})
  data_dir = str(tmp_path_factory.mktemp('sized_videos'))
  tfds.dataset_builders.store_as_tfds_dataset(
      name='sized_videos', version='1.0.0', features=features, data_dir=data_dir,
      split_datasets={'test': [(i, {'video': v, 'label': i}) for i, v in enumerate(videos)]},
      disable_shuffling=True)
  return data_dir


def test_eval_crops_go_along_the_long_side_and_clips_span_the_video(sized_videos_dir):
  config = tiny_config().dataset  # Clips of 4 frames at stride 2 (a span of 7), 16x16 crops.
  config.update(name='sized_videos', data_dir=sized_videos_dir)
  _multi_view(config, split='test')
  rows = _rows(list(data.make_eval_iterator(config, global_batch_size=8)))
  np.testing.assert_array_equal(rows['label'], np.repeat([0, 1, 2], 9))
  # Back to the (t, y, x) each view's pixels came from.
  where = np.round((rows['video'] * 0.5 + 0.5) * 255).astype(int).reshape(3, 9, 4, 16, 16, 3)
  cases = [  # (length, first frames of the clips, y offsets, x offsets).
      (12, (0, 3, 5), (2,), (0, 12, 24)),  # 20x40: starts 0..5; crops along x.
      (9, (0, 1, 2), (0, 12, 24), (2,)),  # 40x20: starts 0..2; crops along y.
      (5, (0, 0, 0), (0,), (0, 4, 8)),  # 16x24, shorter than a clip: its last frame repeats.
  ]
  for video, (length, starts, ys, xs) in zip(where, cases):
    views = [(t, y, x) for t in starts for y in ys for x in xs]
    for view, (t, y, x) in zip(video, views, strict=True):
      frames = np.minimum(t + np.arange(4) * 2, length - 1)
      expected = np.stack(np.meshgrid(frames, y + np.arange(16), x + np.arange(16),
                                      indexing='ij'), axis=-1)
      np.testing.assert_array_equal(view, expected)


def _pixels(video):
  """Normalised (..., C) float32 (mean = std = 0.5) -> the uint8 values as ints."""
  return np.round((video * 0.5 + 0.5) * 255).astype(int)


def _sized_train(sized_videos_dir, train_crop, **fields):
  config = tiny_config().dataset  # 4 frames at stride 2, 16x16 crops.
  config.update({'name': 'sized_videos', 'data_dir': sized_videos_dir, 'train_split': 'test',
                 'shuffle_buffer': 8, 'train_crop': train_crop, 'short_side_range': (16, 24),
                 **fields})
  return config


@pytest.mark.parametrize('train_crop', pipeline.TRAIN_CROPS)
def test_train_crops_are_crop_size_and_deterministic_given_the_seed(sized_videos_dir, train_crop):
  config = _sized_train(sized_videos_dir, train_crop)
  first, again, other = (_take(data.make_train_iterator(config, global_batch_size=8, seed=s), 2)
                         for s in (0, 0, 1))
  assert all(b['video'].shape == (8, 4, 16, 16, 3) for b in first)
  for a, b in zip(first, again):
    np.testing.assert_array_equal(a['video'], b['video'])
  assert not np.array_equal(first[0]['video'], other[0]['video'])


@pytest.mark.parametrize('train_crop', pipeline.TRAIN_CROPS)
def test_flip_off_never_flips_in_any_train_crop(sized_videos_dir, train_crop):
  # The videos hold their x coordinate in channel 2: it never decreases along x unless flipped.
  config = _sized_train(sized_videos_dir, train_crop)
  x = np.concatenate([_pixels(b['video'])[..., 2] for b in
                      _take(data.make_train_iterator(config, global_batch_size=8, seed=0), 4)])
  assert (np.diff(x, axis=-1) >= 0).all() and (x[..., -1] > x[..., 0]).all()
  config.flip = True
  x = np.concatenate([_pixels(b['video'])[..., 2] for b in
                      _take(data.make_train_iterator(config, global_batch_size=8, seed=0), 4)])
  mirrored = (np.diff(x, axis=-1) <= 0).all(axis=(1, 2, 3)) & (x[:, 0, 0, -1] < x[:, 0, 0, 0])
  assert 8 <= mirrored.sum() <= 24  # Of 32 clips, about half; the rest run left to right.
  assert (np.diff(x[~mirrored], axis=-1) >= 0).all()


def _box_stats(scale, ratio, height, width, n=200):
  """Area fractions, aspect ratios w / h and the boxes of `n` random_resized_box draws."""
  rng = np.random.default_rng(0)
  boxes = np.array([[int(v) for v in pipeline.random_resized_box(
      tf.constant(u, tf.float32), height, width, scale, ratio)]
      for u in rng.uniform(size=(n, 2 * pipeline.RESIZED_CROP_ATTEMPTS + 2))])
  y, x, h, w = boxes.T
  assert (y >= 0).all() and (x >= 0).all() and (y + h <= height).all() and (x + w <= width).all()
  return h * w / (height * width), w / h, boxes


def test_random_resized_box_covers_the_configured_area_and_aspect_range():
  area, aspect, _ = _box_stats((0.25, 0.5), (3 / 4, 4 / 3), 200, 300)  # Every draw fits at once.
  assert 0.245 <= area.min() < 0.27 and 0.48 < area.max() <= 0.505
  assert 0.74 <= aspect.min() < 0.8 and 1.25 < aspect.max() <= 1.34
  area, aspect, _ = _box_stats((0.08, 1.0), (3 / 4, 4 / 3), 200, 300)  # The VideoMAE default.
  assert 0.078 <= area.min() < 0.15 and area.max() > 0.85 and 0.74 <= aspect.min()
  assert aspect.max() <= 1.34
  # Nothing fits (a 1:1 box of the whole 20x40 frame's area): the largest box of aspect 1.
  _, _, boxes = _box_stats((1.0, 1.0), (1.0, 1.0), 20, 40, n=20)
  assert (boxes[:, 2:] == 20).all() and len(set(boxes[:, 1])) > 5  # At random x offsets.


def test_scale_jitter_short_sides_span_the_configured_range(sized_videos_dir, monkeypatch):
  # Frames resized to short side s become frames of value s: each crop says which s it got.
  monkeypatch.setattr(pipeline, '_resize_short_side', lambda frames, side: tf.fill(
      tf.stack([tf.shape(frames)[0], side, side, 3]), tf.cast(side, tf.uint8)))
  config = _sized_train(sized_videos_dir, 'scale_jitter', short_side_range=(16, 19))
  sides = np.concatenate([_pixels(b['video']) for b in
                          _take(data.make_train_iterator(config, global_batch_size=8, seed=0), 8)])
  assert (sides == sides[:, :1, :1, :1, :1]).all()  # One side per clip.
  assert set(sides[:, 0, 0, 0, 0].tolist()) == {16, 17, 18, 19}


def test_resize_short_side_keeps_the_aspect_ratio():
  frames = tf.constant(_coordinates(2, 20, 40))
  assert pipeline._resize_short_side(frames, 16).shape == (2, 16, 32, 3)
  assert pipeline._resize_short_side(tf.transpose(frames, [0, 2, 1, 3]), 25).shape == (2, 50, 25, 3)
  np.testing.assert_array_equal(pipeline._resize_short_side(frames, 20), frames)


def test_eval_short_side_resizes_before_the_crop(sized_videos_dir):
  config = tiny_config().dataset  # The centre view of the 20x40 video resized to 16x32.
  config.update(name='sized_videos', data_dir=sized_videos_dir, eval_split='test[:1]',
                eval_short_side=16)
  view = _pixels(next(data.make_eval_iterator(config, global_batch_size=1))['video'][0])
  ys, xs = view[..., 1], view[..., 2]
  assert ys.min() <= 1 and ys.max() >= 18  # The whole short side (unresized: rows 2..17).
  assert 8 <= xs.min() <= 11 and 29 <= xs.max() <= 31  # Original x 10..30 (unresized: 12..27).


@pytest.mark.parametrize('fields, message', [
    (dict(train_crop='inception'), "Unknown config.dataset.train_crop='inception'"),
    (dict(train_crop='scale_jitter', short_side_range=(8, 24)),
     r'short_side_range=\(8, 24\) must be .* crop_size=16 <= low'),
    (dict(train_crop='random_resized', random_resized_scale=(0.5, 0.2)),
     r'random_resized_scale=\(0.5, 0.2\) must be'),
    (dict(train_crop='random_resized', flow=True), 'with config.dataset.flow use'),
])
def test_bad_train_crop_config_is_a_clear_error(config, fields, message):
  config.update(**fields)
  with pytest.raises(ValueError, match=message):
    data.make_train_iterator(config, global_batch_size=16, seed=0)


def test_eval_short_side_below_the_crop_is_a_clear_error(config):
  config.eval_short_side = 12
  with pytest.raises(ValueError, match='eval_short_side=12 is smaller than crop_size=16'):
    data.make_eval_iterator(config, global_batch_size=16)
