"""Bad videos caught when a video_folder dataset is built (frames too small for crops, links to
nothing, directories named like videos, the leftovers of killed builds), and crops larger than
the stored frames refused before training starts, naming the fix."""
import logging.handlers
import os

import av
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from tests.helpers import load_tool, tiny_config
from vivit_jax import data
from vivit_jax.data import pipeline, standard_datasets, video_folder

build_dataset = load_tool('build_dataset')


def write_video(path, height: int, width: int, num_frames: int = 4):
  """An H.264 mp4 of `num_frames` random RGB frames at 8 fps."""
  frames = np.random.default_rng(0).integers(0, 256, (num_frames, height, width, 3), np.uint8)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with av.open(str(path), 'w') as container:
    stream = container.add_stream('libx264', rate=8)
    stream.height, stream.width, stream.pix_fmt = height, width, 'yuv420p'
    for frame in frames:
      container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')))
    container.mux(stream.encode())


def build(root, data_dir, name: str, *args: str) -> tuple[str, list[str]]:
  """(summary line, warnings logged) of tools/build_dataset.py building `root` into `data_dir`."""
  handler = logging.handlers.BufferingHandler(100)
  video_folder.log.addHandler(handler)
  try:
    line = build_dataset.main(['--src', str(root), '--name', name, '--data_dir', data_dir,
                               '--workers', '1', *args])
  finally:
    video_folder.log.removeHandler(handler)
  return line, [record.getMessage() for record in handler.buffer]


@pytest.fixture(scope='module')
def built(tmp_path_factory):
  """(source root, data dir, summary line) of dataset 'bad' built with the default --min_side
  (32) from train/{a: big.mp4 32x32, small.mp4 16x16, link.mp4 -> nothing, dir.mp4/;
  b: wide.mp4 32x48} and test/{a: big.mp4 32x32}."""
  root = tmp_path_factory.mktemp('videos')
  write_video(root / 'train/a/big.mp4', 32, 32)
  write_video(root / 'train/a/small.mp4', 16, 16)
  os.symlink(root / 'nowhere.mp4', root / 'train/a/link.mp4')
  (root / 'train/a/dir.mp4').mkdir()
  write_video(root / 'train/b/wide.mp4', 32, 48)
  write_video(root / 'test/a/big.mp4', 32, 32)
  data_dir = str(tmp_path_factory.mktemp('tfds'))
  line, _ = build(root, data_dir, 'bad')
  return root, data_dir, line


def _config(data_dir: str, name: str = 'bad', **fields):
  """tiny_config's dataset section on dataset `name` of `data_dir`, with `fields` set."""
  config = tiny_config().dataset
  config.update(name=name, data_dir=data_dir, **fields)
  return config


def test_small_video_is_skipped_with_its_size_and_the_fix(built):
  root, data_dir, line = built
  where = video_folder.dataset_dir('bad', data_dir)
  assert line == (f'Wrote 3 videos (train: 2, test: 1) to {where}; skipped 3 (listed in '
                  f'{where}/build_report.json; 1 of them with frames under --min_side=32 '
                  f'pixels: rebuild with --short_side 32 (or more) to keep them)')
  report = video_folder.read_report('bad', data_dir)
  small, = [entry for entry in report['skipped'] if 'size' in entry]
  assert small['path'] == str(root / 'train/a/small.mp4') and small['size'] == [16, 16]
  assert '16x16' in small['reason'] and '--short_side 32' in small['reason']
  builder = tfds.builder('video_folder/bad', data_dir=data_dir)
  assert report['smallest_side'] == builder.info.metadata['smallest_side'] == 32


def test_link_to_nothing_and_directory_are_reported(built):
  root, data_dir, _ = built
  reasons = {os.path.relpath(entry['path'], root): entry['reason']
             for entry in video_folder.read_report('bad', data_dir)['skipped']}
  assert sorted(reasons) == ['train/a/dir.mp4', 'train/a/link.mp4', 'train/a/small.mp4']
  assert 'is a directory, not a video file' in reasons['train/a/dir.mp4']
  assert f"symbolic link to '{root / 'nowhere.mp4'}', which does not exist" in reasons[
      'train/a/link.mp4']


def test_kinetics_lookup_finds_links_and_directories_named_like_clips(tmp_path):
  (tmp_path / 'a/x_000001_000011.mp4').mkdir(parents=True)
  os.symlink(tmp_path / 'gone.mp4', tmp_path / 'a/y_000002_000012.mp4')
  assert standard_datasets._clip_index(str(tmp_path)) == {
      'x_000001_000011': str(tmp_path / 'a/x_000001_000011.mp4'),
      'y_000002_000012': str(tmp_path / 'a/y_000002_000012.mp4')}


def test_crop_larger_than_the_stored_frames_names_the_fix(built):
  _, data_dir, _ = built
  with pytest.raises(ValueError, match=(
      r"crop_size=48 exceeds the stored frames \(smallest side 32 pixels\) of dataset 'bad'; "
      r'rebuild it with tools/build_dataset.py --short_side 48 \(or more\), set '
      r'--config.dataset.train_crop=scale_jitter \(or random_resized\) and '
      r'--config.dataset.eval_short_side=48 \(or more\), or set --config.dataset.crop_size to '
      r'at most 32')):
    data.make_train_iterator(_config(data_dir, crop_size=48), global_batch_size=2, seed=0)
  with pytest.raises(ValueError, match=r'set --config.dataset.eval_short_side=48 \(or more\), or'):
    data.make_eval_iterator(_config(data_dir, crop_size=48), global_batch_size=2)
  # Frames resized before the crop fit.
  resized = _config(data_dir, crop_size=48, train_crop='scale_jitter', short_side_range=(48, 56),
                    eval_short_side=48)
  batch = next(data.make_train_iterator(resized, global_batch_size=2, seed=0))
  assert batch['video'].shape == (2, 4, 48, 48, 3)
  assert next(data.make_eval_iterator(resized, global_batch_size=2))['video'].shape == (
      2, 4, 48, 48, 3)


def test_stale_incomplete_build_is_removed_and_small_frames_kept_on_request(
    built, tmp_path, monkeypatch):
  root, _, _ = built
  data_dir = str(tmp_path)
  stale = video_folder.dataset_dir('kept', data_dir).parent / 'incomplete.K1LL3D_1.0.0'
  stale.mkdir(parents=True)
  (stale / 'part.tfrecord').write_bytes(b'half')
  _, warnings = build(root, data_dir, 'kept', '--min_side', '1')
  assert warnings == [f'Removing {stale}, left by an interrupted build of dataset kept.']
  assert sorted(os.listdir(stale.parent)) == ['1.0.0']
  report = video_folder.read_report('kept', data_dir)
  assert report['written'] == {'train': 3, 'test': 1} and report['smallest_side'] == 16
  # Training reads a frame smaller than the crop: the error names the video, even where the
  # dataset's smallest side is unknown (as in datasets built before it was recorded).
  monkeypatch.setattr(pipeline, '_smallest_frames', lambda builder: (None, ''))
  config = _config(data_dir, 'kept', crop_size=24, train_split='train', shuffle_buffer=1)
  with pytest.raises(tf.errors.InvalidArgumentError, match=r'Video.*a/small.mp4.*crop_size=24'):
    next(data.make_train_iterator(config, global_batch_size=3, seed=0))
