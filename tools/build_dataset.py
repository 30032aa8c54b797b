r"""Builds a `video_folder` TFDS dataset from your video files (vivit_jax/data/video_folder.py).

  python tools/build_dataset.py --src DIR --name NAME [--data_dir DIR] [--fps N] \
      [--short_side N] [--min_side N] \
      [--layout folder|csv|ucf101|hmdb51|kinetics400|kinetics600|kinetics700|ssv2] \
      [--split_id N] [--workers N] [--overwrite]

Then train on it with `--config.dataset.name=NAME --config.dataset.data_dir=DIR`. The layouts
are those of vivit_jax/data/standard_datasets.py (default `folder`: DIR/<split>/<class>/<video>).
Videos that cannot be read, and without --short_side those whose frames have a side under
--min_side pixels (default 32; too small for the crops training takes), are skipped and listed
in the report the last line names:

  Wrote N videos (train: a, test: b) to DIR; skipped K (listed in REPORT)

A build killed midway leaves a temporary `incomplete.*` directory; the next one removes it.

Re-running with the same arguments reuses the built dataset; `--overwrite` rebuilds it.
"""
import argparse
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

import tensorflow_datasets as tfds  # noqa: E402

from vivit_jax.data import standard_datasets, video_folder  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--src', required=True, help='Directory holding the videos (and the '
                      'annotation or split files of the layout).')
  parser.add_argument('--name', required=True, help='Dataset name (config.dataset.name).')
  parser.add_argument('--data_dir', default=None, help="TFDS data dir (default: TFDS's own, "
                      '$TFDS_DATA_DIR or ~/tensorflow_datasets).')
  parser.add_argument('--fps', type=float, default=None,
                      help="Frame rate to store (default: each video's own).")
  parser.add_argument('--short_side', type=int, default=None,
                      help='Scale frames so their shorter side has this many pixels (default: '
                      'unchanged).')
  parser.add_argument('--min_side', type=int, default=video_folder.MIN_SIDE,
                      help='Without --short_side, skip (and report) videos whose frames have a '
                      'side under this many pixels (default %(default)s).')
  parser.add_argument('--layout', default='folder', choices=standard_datasets.LAYOUTS)
  parser.add_argument('--split_id', type=int, default=None,
                      help='Official split 1-3 of ucf101 and hmdb51 (default 1).')
  parser.add_argument('--workers', type=int, default=min(8, os.cpu_count() or 1),
                      help='Threads decoding videos.')
  parser.add_argument('--overwrite', action='store_true', help='Rebuild a built dataset.')
  return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> str:
  """Builds the dataset `argv` (default sys.argv[1:]) asks for; prints and returns the summary."""
  args = parse_args(argv)
  tfds.disable_progress_bar()  # This tool shows its own, one per split.
  src = os.path.abspath(args.src)
  source = standard_datasets.source(args.layout, src, args.split_id)
  origin = {'layout': args.layout, 'src': src, 'split_id': args.split_id}
  report, reused = video_folder.build(
      args.name, source, fps=args.fps, short_side=args.short_side, min_side=args.min_side,
      data_dir=args.data_dir, origin=origin, overwrite=args.overwrite, workers=args.workers,
      progress=True)
  line = video_folder.summary(report, args.data_dir, reused=reused)
  print(line)
  return line


if __name__ == '__main__':
  try:
    main()
  except ValueError as e:  # Bad layouts and arguments: the message says what to fix.
    sys.exit(f'error: {e}')
