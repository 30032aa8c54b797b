"""Training runs of the benchmarks that train (default_job, videomae_pretraining, motion_models):
presets loaded from the repo, runs timed, their metrics.jsonl read back."""
import json
import os
import platform
import runpy
import statistics
import time

from tools.benchmarks.common import options

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))))


def preset(path: str, arg: str | None):
  """get_config(arg) of the config file at `path` in the repo, reading --data_dir if given."""
  config = runpy.run_path(os.path.join(REPO, path))['get_config'](arg)
  if options.DATA_DIR.value:
    config.dataset.data_dir = options.DATA_DIR.value
  return config


def timed_run(config, workdir: str) -> tuple[dict, float]:
  """(train.loop.run's final results, its seconds)."""
  from vivit_jax.train import loop  # pylint: disable=import-outside-toplevel
  start = time.perf_counter()
  results = loop.run(config, workdir)
  return results, time.perf_counter() - start


def eval_curve(workdir: str) -> list[tuple[int, float]]:
  """[(step, eval/top1 or eval/loss)] from a run's metrics.jsonl."""
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    lines = [json.loads(line) for line in f]
  key = 'eval/top1' if any('eval/top1' in l for l in lines) else 'eval/loss'
  return [(l['step'], l[key]) for l in lines if key in l]


def train_clips_per_s(workdir: str) -> float:
  """Median train/clips_per_s of a run's metrics.jsonl rows after the first (which compiles)."""
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    rates = [row['train/clips_per_s'] for row in map(json.loads, f) if 'train/clips_per_s' in row]
  return round(statistics.median(rates[1:] or rates), 1)


def versions() -> dict:
  """Python, jax, flax and tensorflow versions."""
  import flax  # pylint: disable=import-outside-toplevel
  import jax  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  return dict(python=platform.python_version(), jax=jax.__version__, flax=flax.__version__,
              tensorflow=tf.__version__)
