"""The built-in synthetic_motion dataset: format, balance, determinism, build time, and that each
label's motion is really in the pixels while single-frame positions are class-independent."""
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds

from tests.helpers import tiny_config
from vivit_jax import data
from vivit_jax.data import synthetic_motion

GRID_Y, GRID_X = np.mgrid[:synthetic_motion.SIZE, :synthetic_motion.SIZE]


def _config(data_dir):
  config = tiny_config().dataset
  config.data_dir = str(data_dir)
  return config


def _read(builder, split):
  """Videos float32 (N, 16, 32, 32, 3) in [0, 255] and labels (N,) of a split, in file order."""
  videos, labels = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1, as_supervised=True))
  return videos.astype(np.float32), labels


@pytest.fixture(scope='module')
def builder(synthetic_data_dir):
  return data.get_builder(_config(synthetic_data_dir))


@pytest.fixture(scope='module')
def test_split(builder):
  return _read(builder, 'test')


def _diff_centroids(videos):
  """(N, 15, 2) x, y centroids of the large temporal differences: where the bar is changing."""
  diff = np.abs(np.diff(videos, axis=1)).sum(-1)  # (N, 15, H, W), summed over R, G, B.
  weight = np.where(diff > 100, diff, 0)  # Grey noise alone: std ~32.
  total = weight.sum((2, 3)) + 1e-6
  return np.stack([(weight * grid).sum((2, 3)) / total for grid in (GRID_X, GRID_Y)], -1)


def _slopes(videos):
  """(N, 2) least-squares px/frame of the x and y difference centroids over the clip."""
  t = np.arange(15) - 7.0  # Centred times of the 15 differences.
  return np.einsum('nti,t->ni', _diff_centroids(videos), t) / (t ** 2).sum()


def _growth(videos):
  """(N,) > 0 where the bar grows: in the ring where first and last frames differ, the last frame
  has the bar's colour (read at the ring's centre, which the bar covers throughout)."""
  first, last = videos[:, :2].mean(1), videos[:, -2:].mean(1)  # (N, H, W, 3).
  change = np.abs(last - first).sum(-1)
  ring = change > 90
  weight = change * ring
  cy = np.round((weight * GRID_Y).sum((1, 2)) / weight.sum((1, 2))).astype(int)
  cx = np.round((weight * GRID_X).sum((1, 2)) / weight.sum((1, 2))).astype(int)
  bar = np.median(videos[np.arange(len(videos)), :, cy, cx], axis=1)[:, None, None]  # (N, 1, 1, 3).
  closer_at_end = np.abs(first - bar).sum(-1) - np.abs(last - bar).sum(-1)
  return (closer_at_end * ring).sum((1, 2)) / ring.sum((1, 2))


def test_features_and_balanced_classes(builder, test_split):
  info = builder.info
  assert info.features['video'].shape == (16, 32, 32, 3)
  assert info.features['video'].np_dtype == np.uint8
  assert tuple(info.features['label'].names) == synthetic_motion.CLASS_NAMES
  assert {s: info.splits[s].num_examples for s in info.splits} == {'train': 6400, 'test': 1280}
  videos, test_labels = test_split
  assert videos.shape == (1280, 16, 32, 32, 3) and 0 <= videos.min() < videos.max() <= 255
  train_labels = np.concatenate(list(tfds.as_numpy(
      builder.as_dataset(split='train', batch_size=2048).map(lambda ex: ex['label']))))
  for labels in (train_labels, test_labels):
    counts = np.bincount(labels, minlength=10)
    assert len(counts) == 10 and np.all(counts == len(labels) // 10)


def test_build_is_deterministic_and_fast(builder, test_split, tmp_path, monkeypatch):
  """A second build (train cut to its first 512 clips, to keep this test fast) in another dir."""
  splits = synthetic_motion.SyntheticMotion.SPLITS
  monkeypatch.setattr(synthetic_motion.SyntheticMotion, 'SPLITS',
                      {'train': (512, splits['train'][1]), 'test': splits['test']})
  start = time.perf_counter()
  rebuilt = data.get_builder(_config(tmp_path / 'rebuilt'))
  seconds = time.perf_counter() - start
  full = seconds * sum(n for n, _ in splits.values()) / (512 + splits['test'][0])
  print(f'synthetic_motion: built 1792 clips in {seconds:.1f} s; all 7680: ~{full:.0f} s')
  assert full < 30
  videos, labels = _read(rebuilt, 'test')
  np.testing.assert_array_equal(videos, test_split[0])
  np.testing.assert_array_equal(labels, test_split[1])
  last = [next(iter(tfds.as_numpy(b.as_dataset(split='train[511:]')))) for b in (builder, rebuilt)]
  np.testing.assert_array_equal(last[0]['video'], last[1]['video'])


@pytest.mark.parametrize('direction, axis, sign', [(0, 0, 1), (1, 0, -1), (2, 1, -1), (3, 1, 1)])
@pytest.mark.parametrize('fast, speeds', [(0, (0.25, 0.8)), (1, (0.9, 1.6))])
def test_translation_moves_in_the_labelled_direction_and_speed(test_split, direction, axis, sign,
                                                               fast, speeds):
  videos, labels = test_split
  slopes = _slopes(videos[labels == 2 * direction + fast])
  along, across = sign * slopes[:, axis], np.abs(slopes[:, 1 - axis])
  # A slow bar overlaps itself from frame to frame, which blurs its difference centroids:
  # require the direction in nearly all clips and the speed (slow 0.4-0.7, fast 1.1-1.5
  # px/frame) in the median. test_bar_centres_follow_the_label checks the exact motion.
  assert np.mean(along > 0) >= 0.9 and np.median(along) > 2 * np.median(across)
  assert speeds[0] < np.median(along) < speeds[1], np.median(along)


def test_bar_centres_follow_the_label():
  labels = np.arange(800) % 10
  cx, cy = synthetic_motion._bar_parameters(np.random.default_rng(0), labels)[:2]
  velocity = np.stack([np.diff(cx, axis=1).mean(1), np.diff(cy, axis=1).mean(1)], -1)  # (n, 2).
  for label in range(8):
    v = velocity[labels == label] * synthetic_motion._DIRECTIONS[label // 2]
    speed = v.sum(-1)  # Along the labelled direction; the other axis contributes 0.
    low, high = synthetic_motion._SPEEDS[label % 2]
    assert np.all((low - 0.05 < speed) & (speed < high + 0.05)), (label, speed.min(), speed.max())
  assert np.all(np.abs(velocity[labels >= 8]) < 0.1)  # grow / shrink stay in place.


def test_grow_and_shrink_change_the_area(test_split):
  videos, labels = test_split
  assert np.all(_growth(videos[labels == 8]) > 50)
  assert np.all(_growth(videos[labels == 9]) < -50)


def test_position_does_not_tell_the_class(test_split):
  videos, labels = test_split
  centroids = _diff_centroids(videos)  # (N, 15, 2).
  for label in range(10):
    points = centroids[labels == label].reshape(-1, 2)
    assert np.all(np.abs(points.mean(0) - 15.5) < 1.5), (label, points.mean(0))
    assert np.all((4 < points.std(0)) & (points.std(0) < 6.5)), (label, points.std(0))
