"""`video_folder`: a TFDS dataset built from your own video files (any container and codec FFmpeg
reads), e.g. by `tools/build_dataset.py`.

`build(name, source, fps=, short_side=, min_side=)` decodes every video of `source` (a `Source`:
class names and (path, label[, start, end]) `Row`s per split, from `standard_datasets`) with
`video_io.read_video`, resampled to `fps` and scaled to `short_side`, in a few worker threads
that also JPEG-encode the frames, and writes one TFDS split per source split with features:

  video       (T, H, W, 3) uint8, T = duration x fps, stored as JPEG frames (tfds.features.Video)
  label       ClassLabel with the source's class names
  video_id    Text, the video's id (its path under the split, or the standard dataset's id)
  source_fps  float32, the file's frame rate; fps float32, the stored frames' rate

to DATA_DIR/video_folder/NAME/1.0.0/ (DATA_DIR: TFDS's, which honours TFDS_DATA_DIR, unless
given). A video that is missing (a link to nothing, a directory), unreadable, empty or truncated
is skipped, never stopping the build, as is one whose frames have a side under `min_side` pixels
(default MIN_SIDE; unchecked with `short_side`, to which every video is scaled): crops larger than
the frames could not be taken. `build_report.json` beside the dataset lists each one (split, path,
reason, and 'size' [height, width] of a too small one) with the build's parameters, counts and
'smallest_side', the smallest height or width of the stored frames, which the dataset's TFDS
metadata (`info.metadata['smallest_side']`) holds too, for the pipeline to check crops against.
TFDS writes into a temporary directory (`incomplete.*`) renamed when complete, so an interrupted
build leaves no half-built dataset; the next build of the dataset removes that directory, saying
so, and starts afresh (so run one build of a dataset at a time). Re-running a finished build with
the same parameters and source reuses it; other parameters raise unless `overwrite=True`, which
rebuilds it.

Read it with `tfds.builder('video_folder/NAME', data_dir=DATA_DIR)` (TFDS loads it from its files),
or train on it with `--config.dataset.name=NAME --config.dataset.data_dir=DATA_DIR`.
"""
import collections
import concurrent.futures
import dataclasses
import json
import logging
import re
import shutil

import cv2
from etils import epath
import numpy as np
import tensorflow_datasets as tfds
import tqdm

from vivit_jax.data import video_io

BUILDER_NAME = 'video_folder'
VERSION = '1.0.0'
REPORT = 'build_report.json'
MIN_SIDE = 32  # Default min_side: synthetic_motion's frame side, above the default crop (28).
SMALLEST_SIDE = 'smallest_side'  # The metadata key of the smallest stored frame side.
JPEG_QUALITY = 95  # The quality of TFDS's own JPEG encoding (tf.image.encode_jpeg's default).
_NAME = re.compile(r'[A-Za-z0-9_]+')
log = logging.getLogger('vivit_jax')


@dataclasses.dataclass(frozen=True)
class Row:
  """One video of a split: its file, class name, id, and the [start, end) seconds to keep."""
  path: str
  label: str
  video_id: str
  start: float | None = None
  end: float | None = None


@dataclasses.dataclass(frozen=True)
class Source:
  """The videos of a dataset: class names (their order gives the label ids) and rows per split."""
  class_names: tuple[str, ...]
  splits: dict[str, list[Row]]


def dataset_dir(name: str, data_dir: str | None = None) -> epath.Path:
  """Where dataset `name` lives: DATA_DIR/video_folder/NAME/1.0.0 (DATA_DIR: TFDS's if None)."""
  return epath.Path(data_dir or tfds.core.constants.get_default_data_dir(),
                    BUILDER_NAME, name, VERSION)


def is_built(name: str, data_dir: str | None = None) -> bool:
  """Whether a finished video_folder dataset `name` is in `data_dir` (TFDS's if None)."""
  return (dataset_dir(name, data_dir) / 'dataset_info.json').exists()


def read_report(name: str, data_dir: str | None = None) -> dict:
  """The build report of dataset `name`: {'name', 'params', 'written': {split: n}, 'skipped':
  [{'split', 'path', 'reason'[, 'size']}], 'smallest_side'}."""
  return json.loads((dataset_dir(name, data_dir) / REPORT).read_text())


def summary(report: dict, data_dir: str | None = None, *, reused: bool = False) -> str:
  """One line: 'Wrote N videos (train: a, test: b) to DIR; skipped K (listed in REPORT)', and
  when some were too small, how many and the fix."""
  where = dataset_dir(report['name'], data_dir)
  written = report['written']
  order = ('train', 'validation', 'test')  # Then any other split, by name.
  splits = ', '.join(f'{split}: {written[split]}' for split in sorted(
      written, key=lambda split: (order.index(split) if split in order else len(order), split)))
  verb = 'Reused the built dataset of' if reused else 'Wrote'
  small = sum('size' in entry for entry in report['skipped'])
  min_side = report['params'].get('min_side')
  fix = (f'; {small} of them with frames under --min_side={min_side} pixels: rebuild with '
         f'--short_side {min_side} (or more) to keep them' if small else '')
  return (f"{verb} {sum(written.values())} videos ({splits}) to {where}; skipped "
          f"{len(report['skipped'])} (listed in {where / REPORT}{fix})")


def build(name: str, source: Source, *, fps: float | None, short_side: int | None,
          min_side: int = MIN_SIDE, data_dir: str | None = None, origin: dict | None = None,
          overwrite: bool = False, workers: int = 2, progress: bool = False) -> tuple[dict, bool]:
  """Builds dataset `name` from `source` (see the module docstring); returns (report, reused).

  Args:
    name: the dataset's name (letters, digits, '_').
    source: its videos.
    fps: frame rate to store (None: each file's own).
    short_side: shorter side to scale frames to, in pixels (None: unchanged).
    min_side: skip (and report) videos whose frames have a shorter side under this many pixels;
      unused with `short_side`.
    data_dir: TFDS data dir (None: TFDS's default, which honours TFDS_DATA_DIR).
    origin: where the source came from (e.g. layout and directory), kept in the report and
      compared on re-runs.
    overwrite: rebuild a dataset that is already built.
    workers: threads decoding and encoding videos.
    progress: show a progress bar per split.
  """
  if not _NAME.fullmatch(name):
    raise ValueError(f"Dataset name '{name}' may hold only letters, digits and '_'; rename it.")
  if not source.splits:
    raise ValueError(f"The source of dataset '{name}' has no splits; nothing to build.")
  if min_side < 1:
    raise ValueError(f'--min_side={min_side} must be at least 1 (1 keeps frames of any size).')
  params = {'origin': origin or {}, 'fps': fps, 'short_side': short_side,
            'videos': {split: len(rows) for split, rows in source.splits.items()}}
  if not short_side:  # Absent otherwise, as in datasets built before it existed.
    params['min_side'] = min_side
  where = dataset_dir(name, data_dir)
  _remove_incomplete(name, data_dir)
  if is_built(name, data_dir) and not overwrite:
    report = read_report(name, data_dir)
    old = report['params']
    changed = [f'{key}={old.get(key)} (now {value})' for key, value in params.items()
               if old.get(key) != value]
    if changed:
      raise ValueError(
          f"Dataset '{name}' in {where} was built with {', '.join(changed)}; pass --overwrite "
          f"(overwrite=True) to rebuild it, or pick another name.")
    return report, True
  if where.exists():
    shutil.rmtree(where)
  builder = VideoFolder(name=name, source=source, params=params, workers=workers,
                        progress=progress, data_dir=data_dir)
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(try_download_gcs=False))
  return read_report(name, data_dir), False


def _remove_incomplete(name: str, data_dir: str | None):
  """Removes the temporary directories (TFDS's incomplete.*) that killed builds of `name` left."""
  prefix = tfds.core.constants.INCOMPLETE_PREFIX
  for path in sorted(dataset_dir(name, data_dir).parent.glob(f'{prefix}*')):
    log.warning('Removing %s, left by an interrupted build of dataset %s.', path, name)
    path.rmtree()


def _jpeg(frame: np.ndarray) -> bytes:
  ok, encoded = cv2.imencode('.jpg', frame[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
  assert ok, 'OpenCV failed to JPEG-encode a frame.'
  return encoded.tobytes()


def _load(row: Row, fps, short_side, min_side) -> tuple[video_io.Video, list[bytes]] | dict:
  """(the decoded video, its JPEG frames), or why it is skipped: {'reason'[, 'size']}."""
  try:
    video = video_io.read_video(row.path, fps=fps, short_side=short_side, start=row.start,
                                end=row.end)
  except video_io.VideoReadError as e:
    return {'reason': str(e)}
  height, width = video.frames.shape[1:3]
  if min_side and min(height, width) < min_side:
    return {'reason': f'its {height}x{width} (height x width) frames are smaller than '
                      f'--min_side={min_side}; rebuild with --short_side {min_side} (or more) to '
                      f'scale them up, or lower --min_side.', 'size': [height, width]}
  return video, [_jpeg(frame) for frame in video.frames]


class VideoFolder(tfds.core.GeneratorBasedBuilder):
  """Videos decoded from files; one config per dataset name (see the module docstring)."""

  VERSION = tfds.core.Version(VERSION)
  RELEASE_NOTES = {str(VERSION): 'Initial release.'}
  code_path = epath.Path(__file__)

  def __init__(self, *, name: str, source: Source, params: dict, workers: int, progress: bool,
               data_dir: str | None):
    self._source, self._params = source, params
    self._workers, self._progress = workers, progress
    self._written = collections.Counter()
    self._skipped = []
    self._smallest = None  # The smallest side of the stored frames.
    super().__init__(config=tfds.core.BuilderConfig(name=name, description=json.dumps(params)),
                     data_dir=data_dir)

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict({
            'video': tfds.features.Video((None, None, None, 3), encoding_format='jpeg'),
            'label': tfds.features.ClassLabel(names=self._source.class_names),
            'video_id': tfds.features.Text(),
            'source_fps': tfds.features.Scalar(np.float32),
            'fps': tfds.features.Scalar(np.float32),
        }),
        supervised_keys=('video', 'label'),
        metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # The videos are local.
    return {split: self._generate_examples(split, rows)
            for split, rows in self._source.splits.items()}

  def _download_and_prepare(self, dl_manager, download_config=None):
    """Builds the splits, then writes the report into the (still temporary) dataset dir and the
    smallest frame side into the metadata (TFDS writes it after this)."""
    super()._download_and_prepare(dl_manager, download_config)
    self.info.metadata[SMALLEST_SIDE] = self._smallest
    report = {'name': self.builder_config.name, 'params': self._params,
              'written': {split: self._written[split] for split in self._source.splits},
              'skipped': self._skipped, SMALLEST_SIDE: self._smallest}
    (epath.Path(self.data_dir) / REPORT).write_text(json.dumps(report, indent=1))

  def _generate_examples(self, split: str, rows: list[Row]):
    """Yields (row index, example) for every readable video of `rows`; records the others."""
    fps, short_side, min_side = map(self._params.get, ('fps', 'short_side', 'min_side'))
    with (concurrent.futures.ThreadPoolExecutor(self._workers) as pool,
          tqdm.tqdm(total=len(rows), desc=f'{self.builder_config.name} {split}', unit='video',
                    disable=not self._progress) as bar):
      loads = _in_order(pool, lambda row: _load(row, fps, short_side, min_side), rows,
                        2 * self._workers)
      for index, (row, loaded) in enumerate(zip(rows, loads)):
        bar.update()
        if isinstance(loaded, dict):
          self._skipped.append({'split': split, 'path': row.path, **loaded})
          bar.set_postfix(skipped=len(self._skipped))
          continue
        video, frames = loaded
        self._written[split] += 1
        side = min(video.frames.shape[1:3])
        self._smallest = side if self._smallest is None else min(self._smallest, side)
        yield index, {'video': frames, 'label': row.label, 'video_id': row.video_id,
                      'source_fps': video.source_fps, 'fps': video.fps}


def _in_order(pool, fn, items, ahead: int):
  """fn(item) for each of `items` in order, computed in `pool` up to `ahead` items in advance."""
  pending = collections.deque()
  for item in items:
    pending.append(pool.submit(fn, item))
    if len(pending) > ahead:
      yield pending.popleft().result()
  while pending:
    yield pending.popleft().result()
