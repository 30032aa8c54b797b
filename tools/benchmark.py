"""Runs one benchmark, tools/benchmarks/NAME.py, and writes its results (JSON + a markdown table)
under --out, by default the committed benchmarks/:

  python tools/benchmark.py NAME [flags]        NAME: continual, default_job, data, memory,
  python tools/benchmark.py NAME --help         models, motion_models, videomae_pretraining

Each benchmark's module docstring says what it measures, its flags and how long it takes.
"""
import os
import shutil
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # `tools.benchmarks` and this checkout's vivit_jax.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

import importlib  # noqa: E402

from absl import app, flags  # noqa: E402

from tools import benchmarks  # noqa: E402
from tools.benchmarks.common import options  # noqa: E402

_WORKDIR = flags.DEFINE_string('workdir', '/tmp/vivit_jax_benchmarks',
                               'Scratch directory for the runs (its old contents are removed).')
_OUT = flags.DEFINE_string('out', os.path.join(REPO, 'benchmarks'), 'Where results go.')


def _named() -> str | None:
  """The benchmark named on the command line (its flags must be defined before parsing)."""
  return next((arg for arg in sys.argv[1:] if arg in benchmarks.names()), None)


def main(argv):
  name = _named()
  if name is None or len(argv) != 2:
    raise app.UsageError(f'Name one benchmark: {", ".join(benchmarks.names())}.')
  benchmark = importlib.import_module(f'tools.benchmarks.{name}')
  from vivit_jax import console  # pylint: disable=import-outside-toplevel
  console.show_progress()
  workdir = os.path.join(_WORKDIR.value, name)
  shutil.rmtree(workdir, ignore_errors=True)
  os.makedirs(_OUT.value, exist_ok=True)
  print(benchmark.write(benchmark.run(workdir, _OUT.value), _OUT.value))


if __name__ == '__main__':
  if _named():  # Its flags, and `NAME --help` shows its docstring and flags.
    _benchmark = importlib.import_module(f'tools.benchmarks.{_named()}')
    flags.adopt_module_key_flags(_benchmark)
    flags.adopt_module_key_flags(options)
    __doc__ = _benchmark.__doc__
  app.run(main)
