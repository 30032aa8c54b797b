"""tools/benchmark.py: one module of tools/benchmarks/ per benchmark, run by name; an unknown name
is refused with the choices; `NAME --help` gives that benchmark's docstring and flags. (The tool
runs in a subprocess: its absl flags would clash with other tools' in this one.)"""
import os
import subprocess
import sys

from tests.helpers import REPO
from tools import benchmarks


def _tool(*args):
  return subprocess.run([sys.executable, os.path.join(REPO, 'tools', 'benchmark.py'), *args],
                        capture_output=True, text=True, timeout=120,
                        env=dict(os.environ, JAX_PLATFORMS='cpu'))


def test_every_module_is_a_benchmark():
  modules = {f[:-3] for f in os.listdir(os.path.join(REPO, 'tools', 'benchmarks'))
             if f.endswith('.py') and f != '__init__.py'}
  assert benchmarks.names() == sorted(modules)
  assert {'default_job', 'videomae_pretraining', 'motion_models', 'data', 'models',
          'memory'} <= modules


def test_unknown_benchmark_is_refused_with_the_choices():
  done = _tool('nope')
  assert done.returncode != 0
  assert 'Name one benchmark: ' + ', '.join(benchmarks.names()) in done.stderr + done.stdout


def test_help_of_a_benchmark_gives_its_docstring_and_flags():
  done = _tool('memory', '--help')  # absl exits 1 after --help.
  assert 'How much device memory does each train step need' in done.stdout
  assert '--targets' in done.stdout and '--remat_arms' in done.stdout
