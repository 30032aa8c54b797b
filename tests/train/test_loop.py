"""The training loop end to end: exact resume, SIGTERM, NaN, model mismatch, metrics, learning."""
import hashlib
import json
import logging
import os
import re
import signal

import jax
import numpy as np
import pytest

from tests.helpers import tiny_config
from vivit_jax import data
from vivit_jax.train import checkpoint, loop


@pytest.fixture
def config(synthetic_data_dir):
  config = tiny_config()
  config.dataset.data_dir = synthetic_data_dir
  return config


class _RecordBatches:
  """Wraps data.make_train_iterator: records batch digests, optionally acts at one index."""

  def __init__(self, monkeypatch, at_index=None, action=None):
    self.digests, self.at_index, self.action = [], at_index, action
    original = data.make_train_iterator

    def wrapped(*args, **kwargs):
      self.start = kwargs.get('start_step', 0)
      for index, batch in enumerate(original(*args, **kwargs), start=self.start):
        self.digests.append(hashlib.sha1(batch['video'].tobytes()).hexdigest())
        if index == self.at_index:
          batch = self.action(batch)
        yield batch

    monkeypatch.setattr(data, 'make_train_iterator', wrapped)


def _final_params(config, workdir):
  state = loop.restore_for_eval(config, workdir).state
  return jax.device_get(state.params), int(state.step)


def test_resume_is_exact(config, tmp_path, monkeypatch):
  straight = _RecordBatches(monkeypatch)
  loop.run(config, str(tmp_path / 'straight'))

  def sigterm(batch):  # Arrives while step 2 runs: the loop saves at 2 and stops.
    os.kill(os.getpid(), signal.SIGTERM)
    return batch

  interrupted = _RecordBatches(monkeypatch, at_index=1, action=sigterm)
  with pytest.raises(loop.TrainingInterrupted) as stop:
    loop.run(config, str(tmp_path / 'resumed'))
  assert stop.value.signum == signal.SIGTERM
  first_part = interrupted.digests[:2]
  resumed = _RecordBatches(monkeypatch)
  loop.run(config, str(tmp_path / 'resumed'))
  assert resumed.start == 2
  assert first_part + resumed.digests[:2] == straight.digests[:4]
  params_a, step_a = _final_params(config, str(tmp_path / 'straight'))
  params_b, step_b = _final_params(config, str(tmp_path / 'resumed'))
  assert step_a == step_b == 4
  jax.tree.map(np.testing.assert_array_equal, params_a, params_b)


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(config, tmp_path, monkeypatch):
  _RecordBatches(monkeypatch, at_index=2,
                 action=lambda b: dict(b, video=np.full_like(b['video'], np.inf)))
  with pytest.raises(loop.NonFiniteLossError, match='step 3'):
    loop.run(config, str(tmp_path))
  ckpt_dir = tmp_path / 'checkpoints'
  assert sorted(int(p.name) for p in ckpt_dir.iterdir() if p.name.isdigit()) == [2]


def test_checkpoint_of_another_model_is_refused(config, tmp_path):
  config.train.num_steps = 2
  loop.run(config, str(tmp_path))
  config.model.hidden_size = 48
  config.model.mlp_dim = 96
  with pytest.raises(checkpoint.CheckpointMismatchError, match='new --workdir'):
    loop.run(config, str(tmp_path))


def test_metrics_and_progress_written(config, tmp_path, caplog):
  caplog.set_level(logging.INFO, logger='vivit_jax')
  results = loop.run(config, str(tmp_path))
  progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith('step ')]
  assert len(progress) == 2 and re.fullmatch(
      r'step 4/4 \| loss \d+\.\d{4} \| top1 [01]\.\d{4} \| top5 [01]\.\d{4} \| lr \S+ \| '
      r'\d+\.\d clips/s \| ETA 0m00s',
      progress[-1]), progress
  final = caplog.records[-1].getMessage()
  assert final.startswith(f'Final evaluation on test ({int(results["eval/count"])} videos): loss ')
  lines = [json.loads(l) for l in open(tmp_path / 'metrics.jsonl')]
  train_lines = [l for l in lines if 'train/loss' in l]
  assert [l['step'] for l in train_lines] == [2, 4]
  assert all(np.isfinite(l['train/loss']) and 0 <= l['train/top1'] <= 1 for l in train_lines)
  assert lines[-1]['step'] == 4 and lines[-1]['eval/top1'] == results['eval/top1']
  assert 0 <= results['eval/top1'] <= results['eval/top5'] <= 1
  assert results['eval/count'] == data.dataset_info(config.dataset)['num_examples']['test']
  assert any(f.startswith('events') for f in os.listdir(tmp_path / 'tensorboard'))


def test_checkpoint_restores_onto_another_mesh(config, tmp_path):
  config.train.num_steps = 2
  config.mesh.update(data=8, fsdp=1, model=1)
  loop.run(config, str(tmp_path))
  saved = jax.device_get(loop.restore_for_eval(config, str(tmp_path)).state.params)
  config.mesh.update(data=2, fsdp=2, model=2)
  restored = loop.restore_for_eval(config, str(tmp_path)).state
  leaves = jax.tree.leaves(restored.params)
  assert any(x.sharding.shard_shape(x.shape) != x.shape for x in leaves)  # Now split.
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(restored.params), saved)
