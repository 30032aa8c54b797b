"""Workdirs on a bucket (gs://...): metrics, config.json and the evaluation files go through
tf.io.gfile. TensorFlow's in-memory `ram://` file system stands in for GCS (same API, no network)."""
import json
import os
import uuid

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import tiny_config
from vivit_jax import evaluate
from vivit_jax.saved import checkpoints, config as saved_config
from vivit_jax.train import metrics


@pytest.fixture
def remote():
  return f'ram://{uuid.uuid4().hex}/runs/tiny'


def test_metrics_append_to_a_remote_workdir(remote):
  writer = metrics.MetricWriter(remote)
  writer.write(1, {'train/loss': 2.5})
  writer.write(2, {'train/loss': 1.25})
  with tf.io.gfile.GFile(os.path.join(remote, 'metrics.jsonl')) as f:
    lines = [json.loads(line) for line in f]
  assert lines == [{'step': 1, 'train/loss': 2.5}, {'step': 2, 'train/loss': 1.25}]
  assert tf.io.gfile.glob(os.path.join(remote, 'tensorboard', 'events.out.tfevents.*'))


def test_config_saves_and_loads_back_from_a_remote_workdir(remote):
  config = tiny_config()
  path = saved_config.save_config(config, remote)
  assert path == f'{remote}/config.json' and tf.io.gfile.exists(path)
  with pytest.raises(FileNotFoundError, match='No checkpoint in workdir ram://'):
    saved_config.load_config(remote)
  tf.io.gfile.makedirs(os.path.join(remote, 'checkpoints'))
  loaded = saved_config.load_config(remote)
  assert loaded.model.patch_size == (2, 4, 4) and loaded.train.num_steps == 4


def test_absolute_keeps_urls_and_resolves_local_paths():
  assert checkpoints.absolute('gs://bucket/runs/a') == 'gs://bucket/runs/a'
  assert checkpoints.absolute('runs/a') == os.path.join(os.getcwd(), 'runs/a')


def test_evaluation_files_are_written_to_a_remote_dir(remote):
  labels = np.array([0, 1, 1, 2])
  probs = np.eye(3)[[0, 1, 2, 2]] * 0.9 + 0.1 / 3
  per_class = evaluate.class_metrics(probs, labels, 3)
  names = ['a', 'b', 'c']
  tf.io.gfile.makedirs(remote)
  evaluate.write_per_class(f'{remote}/per_class.csv', names, per_class)
  evaluate.plot_confusion(f'{remote}/confusion.png', per_class['confusion'], names, 'test')
  with tf.io.gfile.GFile(f'{remote}/per_class.csv') as f:
    assert f.read().splitlines()[1:] == ['a,1,1.0000,1.0000', 'b,2,0.5000,1.0000',
                                         'c,1,1.0000,1.0000']
  png = tf.io.decode_png(tf.io.read_file(f'{remote}/confusion.png')).numpy()
  assert png.shape[0] >= 600 and png.std() > 0
