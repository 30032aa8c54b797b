"""The training loop end to end: exact resume, SIGTERM, NaN, model mismatch, metrics, learning."""
import hashlib
import json
import logging
import os
import re
import signal

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.helpers import tiny_config
from vivit_jax import data
from vivit_jax.train import checkpoint, loop, step


@pytest.fixture
def config(synthetic_data_dir):
  config = tiny_config()
  config.dataset.data_dir = synthetic_data_dir
  return config


_MAKE_TRAIN_ITERATOR = data.make_train_iterator


class _RecordBatches:
  """Wraps data.make_train_iterator: records batch digests, optionally acts at one index."""

  def __init__(self, monkeypatch, at_index=None, action=None):
    self.digests, self.at_index, self.action = [], at_index, action
    original = _MAKE_TRAIN_ITERATOR  # Not an earlier wrapper: their actions would run too.

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

  def sigterm(batch):  # Batch 2 is prefetched while step 2 runs: the loop saves at 2 and stops.
    os.kill(os.getpid(), signal.SIGTERM)
    return batch

  interrupted = _RecordBatches(monkeypatch, at_index=2, action=sigterm)
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


def test_five_steps_compile_once(config, tmp_path, monkeypatch):
  steps = []
  original = step.make_train_step

  def recording(*args, **kwargs):
    steps.append(original(*args, **kwargs))
    return steps[-1]

  monkeypatch.setattr(step, 'make_train_step', recording)
  config.train.update(num_steps=5, log_every_steps=5)
  config.dataset.eval_split = 'test[:16]'
  loop.run(config, str(tmp_path))
  assert len(steps) == 1 and steps[0].num_traces() == 1


def test_prefetch_puts_the_next_batch_before_yielding():
  pulled = []

  def batches():
    for i in range(4):
      pulled.append(i)
      yield {'x': np.full((8, 2), i, np.float32)}

  mesh = jax.make_mesh((8,), ('data',), axis_types=(jax.sharding.AxisType.Auto,))
  device_batches = loop._prefetch(batches(), jax.sharding.NamedSharding(
      mesh, jax.sharding.PartitionSpec('data')))
  first = next(device_batches)
  assert pulled == [0, 1] and isinstance(first['x'], jax.Array)
  assert [int(b['x'][0, 0]) for b in [first, *device_batches]] == [0, 1, 2, 3]


def _step_metrics(i: int, finite: float) -> dict:
  return {**{k: jnp.float32(v) for k, v in dict(loss_sum=2.0 * i, count=2.0, grad_norm=i,
                                                lr=0.1 * i, finite=finite).items()},
          'faults': jnp.int32(0 if finite else step.NON_FINITE_GRADS)}


def _describe(step_number, faults):
  return f'step {step_number} faults {faults}'



def test_metrics_are_summed_on_device_and_checked_when_read():
  metrics = loop._TrainMetrics(_describe)
  for i, finite in enumerate([1.0, 0.0, 1.0, 0.0], start=1):
    metrics.push(i, _step_metrics(i, finite))
  assert all(isinstance(v, jax.Array) for v in metrics.totals.values())  # Nothing fetched yet.
  with pytest.raises(loop.NonFiniteLossError, match=f'^step 2 faults {step.NON_FINITE_GRADS}$'):
    metrics.check()
  metrics = loop._TrainMetrics(_describe)
  for i in (1, 2):
    metrics.push(i, _step_metrics(i, 1.0))
  summary = metrics.average()
  assert summary['train/loss'] == pytest.approx(1.5)
  assert summary['train/grad_norm'] == pytest.approx(1.5)
  assert summary['train/lr'] == pytest.approx(0.2)


def test_a_dataset_of_other_classes_is_refused_before_the_state_is_made(config, tmp_path):
  """setup asks the task about the dataset right after planning: no state, no workdir files."""
  config.model.num_classes = 7
  with pytest.raises(ValueError, match=r'--config\.model\.num_classes=10'):
    loop.setup(config, str(tmp_path / 'run'))
  assert not os.path.exists(tmp_path / 'run' / 'checkpoints')
