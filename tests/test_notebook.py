"""notebooks/colab_tpu.ipynb runs top to bottom on CPU with its TINY parameters (a kernel of this
Python, one CPU device), shows the confusion matrix and a reconstruction grid inline and
prints an evaluation line; the committed file is its generator's output."""
import os
import re
import runpy
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from tests.helpers import REPO

NOTEBOOK = os.path.join(REPO, 'notebooks', 'colab_tpu.ipynb')


def test_committed_notebook_is_the_generators_with_empty_outputs():
  generated = runpy.run_path(os.path.join(REPO, 'notebooks', 'make_colab_tpu.py'))['notebook']()
  committed = nbformat.read(NOTEBOOK, as_version=4)
  nbformat.validate(committed)
  assert committed == generated, 'run `python notebooks/make_colab_tpu.py` after editing it'
  assert not any(cell.get('outputs') for cell in committed.cells)


def _with_parameters(nb, **values):
  """`nb` with a cell setting `values` after its 'parameters' cell (papermill's injection)."""
  index = next(i for i, cell in enumerate(nb.cells) if 'parameters' in cell.metadata.get('tags', []))
  source = '\n'.join(f'{k} = {v!r}' for k, v in values.items())
  source += '\nimport sys\nprint("kernel python:", sys.executable)'
  cell = nbformat.v4.new_code_cell(source, metadata={'tags': ['injected-parameters']})
  nb.cells.insert(index + 1, cell)
  return nb


def _outputs(nb, cell_id):
  return next(cell.outputs for cell in nb.cells if cell.get('id') == cell_id)


def _text(outputs) -> str:
  return ''.join(o.get('text', '') for o in outputs if o.output_type == 'stream')


def _pngs(outputs) -> list:
  return [o for o in outputs if 'image/png' in o.get('data', {})]


@pytest.fixture(scope='module')
def executed(synthetic_data_dir, tmp_path_factory):
  work = tmp_path_factory.mktemp('notebook')
  nb = _with_parameters(nbformat.read(NOTEBOOK, as_version=4), RUN_INSTALL=False, TINY=True,
                        REPO=REPO, DATA_DIR=synthetic_data_dir, WORKDIR=str(work / 'runs'))
  env = dict(os.environ, JAX_PLATFORMS='cpu', TF_CPP_MIN_LOG_LEVEL='3',
             # One device (conftest's 8 simulated ones only slow the compiles), its compile flags.
             XLA_FLAGS='--xla_backend_optimization_level=0')
  client = NotebookClient(nb, kernel_name='python3', timeout=300,
                          resources={'metadata': {'path': str(work)}})
  client.execute(env=env)  # A cell that raises fails the test with its traceback.
  return nb


@pytest.mark.slow
def test_notebook_runs_on_cpu_and_shows_its_results(executed):
  injected = next(c for c in executed.cells if 'injected-parameters' in c.metadata.get('tags', []))
  assert f'kernel python: {sys.executable}' in _text(injected.outputs)
  assert '1 cpu device(s), 1 process(es)' in _text(_outputs(executed, 'devices'))
  evaluation = _text(_outputs(executed, 'evaluate'))
  top1 = re.search(r'64 videos x 6 views \(2 clips x 3 crops\): top-1 (\d\.\d{4})', evaluation)
  assert top1 and 0 <= float(top1.group(1)) <= 1, evaluation
  assert len(re.findall(r'^\S+ +\d+ +[01]\.\d{4} +[01]\.\d{4}$', evaluation, re.M)) == 10
  grid = _text(_outputs(executed, 'mae'))
  assert 'reconstructions/step_000004.png' in grid
  for cell_id in ('evaluate', 'mae'):
    images = _pngs(_outputs(executed, cell_id))
    assert len(images) == 1, f'{cell_id}: {len(images)} inline PNGs'
    assert images[0].data['image/png'].startswith('iVBOR')  # Base64 of the PNG signature.
  top5 = [float(p) for p in re.findall(r'^  (\d\.\d{4})  \S+$',
                                       _text(_outputs(executed, 'predict')), re.M)]
  assert len(top5) == 5 and top5 == sorted(top5, reverse=True) and sum(top5) <= 1.0001
