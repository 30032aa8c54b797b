"""vivit_jax.evaluate: per-video multi-view results, per-class accuracy, the confusion matrix and
the files it writes; the config saved in the workdir and its command line."""
import csv
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import REPO
from vivit_jax import data, evaluate
from vivit_jax.saved import config as saved_config
from vivit_jax.train import tasks


@pytest.fixture
def workdir(tiny_workdir):
  return tiny_workdir


def test_training_saves_a_config_that_loads_back(workdir, synthetic_data_dir):
  config = saved_config.load_config(workdir)
  assert config.dataset.data_dir == synthetic_data_dir and config.model.hidden_size == 32
  assert config.model.patch_size == (2, 4, 4)
  assert config.sharding_rules[0] == ('batch', ('data', 'fsdp'))


def test_multi_view_results_and_files(workdir, monkeypatch):
  config = saved_config.load_config(workdir)
  config.dataset.update(eval_clips=2, eval_crops=3)
  seen = {}
  per_video = tasks.ViewAverager.per_video
  monkeypatch.setattr(tasks.ViewAverager, 'per_video',
                      lambda self: seen.setdefault('rows', per_video(self)))
  record = evaluate.evaluate(config, workdir, split='test[:24]')
  _, probs, labels = seen['rows']
  assert record['videos'] == 24 == len(labels) and record['views_per_video'] == 6
  np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)
  predicted = probs.argmax(1)
  assert record['top1'] == pytest.approx(np.mean(predicted == labels))
  per_class = [np.mean(predicted[labels == c] == c) for c in np.unique(labels)]
  assert record['mean_class_accuracy'] == pytest.approx(np.mean(per_class))
  out = os.path.join(workdir, 'eval')
  assert json.load(open(os.path.join(out, 'results.json'))) == record
  rows = list(csv.DictReader(open(os.path.join(out, 'per_class.csv'))))
  assert [r['class'] for r in rows] == data.dataset_info(config.dataset)['class_names']
  assert sum(int(r['videos']) for r in rows) == 24
  for c, r in enumerate(rows):
    if int(r['videos']):
      assert float(r['top1']) == pytest.approx(np.mean(predicted[labels == c] == c), abs=1e-4)
  png = tf.io.decode_png(tf.io.read_file(os.path.join(out, 'confusion_matrix.png'))).numpy()
  assert png.shape[0] > 300 and png.shape[2] in (3, 4) and png.std() > 0


def test_class_metrics_counts_and_mean_per_class_accuracy():
  rng = np.random.default_rng(0)
  labels = np.array([0, 0, 0, 1, 2, 2, 4])  # Class 3 has no videos.
  probs = rng.dirichlet(np.ones(5), size=len(labels))
  probs[[0, 1, 3], labels[[0, 1, 3]]] = 2  # Videos 0, 1 and 3 right, the rest by chance.
  m = evaluate.class_metrics(probs, labels, 5)
  predicted = probs.argmax(1)
  assert m['confusion'].sum() == 7 and (m['confusion'].sum(1) == [3, 1, 2, 0, 1]).all()
  assert (np.diag(m['confusion']) == [np.sum((predicted == c) & (labels == c))
                                      for c in range(5)]).all()
  expected = np.mean([np.mean(predicted[labels == c] == c) for c in (0, 1, 2, 4)])
  assert m['mean_class_accuracy'] == pytest.approx(expected) and np.isnan(m['top1'][3])
  assert (m['top5'][[0, 1, 2, 4]] == 1).all()  # Five classes: always in the top 5.


def _cli(*args):
  return subprocess.run([sys.executable, '-m', 'vivit_jax.evaluate', *args], cwd=REPO,
                        capture_output=True, text=True, timeout=120,
                        env={**os.environ, 'JAX_PLATFORMS': 'cpu'})


def test_command_line_takes_config_overrides(workdir, tmp_path):
  out = str(tmp_path / 'eval')
  done = _cli(f'--workdir={workdir}', '--split=test[:8]', f'--out={out}',
              '--config.dataset.eval_clips=2')
  assert done.returncode == 0, done.stderr
  record = json.load(open(os.path.join(out, 'results.json')))
  assert record['videos'] == 8 and record['views_per_video'] == 2 and 'top-1' in done.stdout
  empty = _cli(f'--workdir={tmp_path / "empty"}')
  assert empty.returncode != 0
  assert 'FileNotFoundError: No checkpoint in workdir' in empty.stderr.strip().splitlines()[-1]


def test_static_frame_probe_needs_only_the_workdir(workdir):
  done = subprocess.run(
      [sys.executable, os.path.join(REPO, 'tools', 'static_frame_probe.py'), f'--workdir={workdir}',
       '--config.dataset.eval_split=test[:16]'],
      cwd=REPO, capture_output=True, text=True, timeout=120,
      env={**os.environ, 'JAX_PLATFORMS': 'cpu'})
  assert done.returncode == 0, done.stderr
  assert re.search(r'step 2: top-1 on clips [01]\.\d{4}; on the middle frame repeated 4 times '
                   r'[01]\.\d{4} \(chance 0\.1000\)', done.stdout), done.stdout
