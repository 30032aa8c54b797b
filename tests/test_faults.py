"""Injected faults at tiny size: each ends with nothing lost and a message naming the fix.

Checkpoints of tiny states (non-finite, keep, another mesh): tests/train/test_checkpoint.py.
Bad videos at build time: tests/data/test_bad_videos.py; bad tensors into models and predict:
tests/models/test_inputs.py. Exact resume after SIGTERM, SIGKILL during a save and a NaN
loss: tests/train/test_loop.py and tests/test_distributed.py.
"""
import errno
import json
import logging
import os
import subprocess
import sys

import pytest
from orbax.checkpoint._src.handlers import json_checkpoint_handler

from tests.helpers import tiny_config
from vivit_jax.train import checkpoint, loop, metrics, workdir_lock


def _config(data_dir):
  """tiny_config, Model 1 with global average pooling (so Model 4 has the same parameters)."""
  config = tiny_config()
  config.dataset.update(data_dir=data_dir, eval_split='test[:16]')
  config.model.classifier = 'gap'
  return config


@pytest.fixture
def config(synthetic_data_dir):
  return _config(synthetic_data_dir)


@pytest.fixture(scope='module')
def trained(synthetic_data_dir, tmp_path_factory):
  """A workdir of `_config` trained 4 steps: checkpoints 2 and 4."""
  workdir = str(tmp_path_factory.mktemp('trained'))
  loop.run(_config(synthetic_data_dir), workdir)
  return workdir


def test_rerunning_a_finished_run_trains_and_evaluates_nothing(config, trained, caplog):
  before = open(os.path.join(trained, 'metrics.jsonl')).read()
  final = json.loads(before.splitlines()[-1])
  caplog.set_level(logging.INFO, logger='vivit_jax')
  results = loop.run(config, trained)
  assert 'already trained to step 4' in caplog.text
  assert results == {k: v for k, v in final.items() if k != 'step'}
  assert open(os.path.join(trained, 'metrics.jsonl')).read() == before


def _steps(workdir) -> list[int]:
  directory = os.path.join(workdir, 'checkpoints')
  return sorted(int(n) for n in os.listdir(directory) if n.isdigit())


def _copy(workdir, tmp_path) -> str:
  target = str(tmp_path / 'copy')
  subprocess.run(['cp', '-r', workdir, target], check=True)
  return target


# An update that makes the parameters non-finite while the loss and gradients are finite.
def test_overflowing_update_is_not_applied_nor_checkpointed(config, tmp_path):
  config.optimizer.update(learning_rate=1e39, warmup_steps=0)  # Adam steps ~lr: inf in float32.
  with pytest.raises(loop.NonFiniteLossError) as error:
    loop.run(config, str(tmp_path))
  message = str(error.value)
  assert 'Non-finite updated parameters or optimizer state in the update of step 1' in message
  assert 'learning_rate=1e+39' in message and 'param_dtype=float32' in message
  assert not _steps(tmp_path)  # Nothing poisoned was saved: a rerun starts afresh.


def test_keep_zero_is_refused_before_anything_is_built(config, tmp_path):
  config.checkpoint.keep = 0  # keep=1 keeping only the final one: tests/train/test_checkpoint.py.
  with pytest.raises(ValueError, match=r'config.checkpoint.keep=0 is invalid: .* >= 1'):
    loop.run(config, str(tmp_path / 'workdir'))
  assert not os.path.exists(tmp_path / 'workdir')


def _truncate_data_files(step_dir):
  for root, _, files in os.walk(os.path.join(step_dir, 'state')):
    for name in files:
      if os.path.basename(root) == 'd':  # TensorStore's data files.
        path = os.path.join(root, name)
        with open(path, 'r+b') as f:
          f.truncate(os.path.getsize(path) // 2)


@pytest.mark.parametrize('damage', ['truncate data files', 'delete the state item'])
def test_damaged_latest_checkpoint_is_moved_aside_and_the_previous_restored(
    config, trained, tmp_path, caplog, damage):
  workdir = _copy(trained, tmp_path)
  step_dir = os.path.join(workdir, 'checkpoints', '4')
  if damage == 'truncate data files':
    _truncate_data_files(step_dir)
  else:
    subprocess.run(['rm', '-r', os.path.join(step_dir, 'state')], check=True)
  caplog.set_level(logging.WARNING, logger='vivit_jax')
  config.train.num_steps = 6
  exp = loop.setup(config, workdir)
  exp.ckpt.close()
  assert int(exp.state.step) == 2
  assert 'Checkpoint step 4' in caplog.text and 'cannot be read' in caplog.text
  assert _steps(workdir) == [2]
  assert os.path.isdir(os.path.join(workdir, 'checkpoints', 'damaged', '4'))  # Kept, not deleted.


def test_no_readable_checkpoint_names_them_all(config, trained, tmp_path):
  workdir = _copy(trained, tmp_path)
  for s in (2, 4):
    _truncate_data_files(os.path.join(workdir, 'checkpoints', str(s)))
  with pytest.raises(checkpoint.NoReadableCheckpointError, match=r'moved aside step 4 .*step 2'):
    loop.setup(config, workdir)


def test_second_run_on_a_workdir_is_refused_while_the_first_lives(config, tmp_path):
  holder = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
  try:
    lock = tmp_path / workdir_lock.LOCK_FILE
    lock.write_text(json.dumps({'host': os.uname().nodename, 'pid': holder.pid,
                                'started': 'earlier'}))
    with pytest.raises(workdir_lock.WorkdirBusyError, match=f'pid {holder.pid}.*another --workdir'):
      loop.run(config, str(tmp_path))
    assert not os.path.exists(tmp_path / 'checkpoints')  # The first run's files untouched.
    assert json.loads(lock.read_text())['pid'] == holder.pid
  finally:
    holder.kill()
    holder.wait()
  with workdir_lock.hold(str(tmp_path)):  # The holder is gone: its lock is stale, taken over.
    assert json.loads(lock.read_text())['pid'] == os.getpid()
  assert not lock.exists()  # Released.


def test_same_process_cannot_train_a_workdir_twice_at_once(config, tmp_path):
  with workdir_lock.hold(str(tmp_path)):
    with pytest.raises(workdir_lock.WorkdirBusyError, match=f'pid {os.getpid()}'):
      loop.run(config, str(tmp_path))


def test_workdir_that_is_a_file_or_cannot_be_created(config, tmp_path):
  (tmp_path / 'file').write_text('')
  with pytest.raises(NotADirectoryError, match='is a file, not a directory'):
    loop.run(config, str(tmp_path / 'file'))
  with pytest.raises(PermissionError, match='Cannot create --workdir .*pick a writable'):
    loop.run(config, str(tmp_path / 'file' / 'sub'))


@pytest.mark.parametrize('change, named', [
    ({'variant': 'factorised_dot_product'}, "variant: 'spatio_temporal' -> "
                                            "'factorised_dot_product'"),
    ({'hidden_size': 48, 'mlp_dim': 96}, 'hidden_size: 32 -> 48'),
])
def test_another_model_is_refused_by_its_config(config, trained, change, named):
  config.model.update(change)
  with pytest.raises(checkpoint.CheckpointMismatchError) as error:
    loop.setup(config, trained)
  assert named in str(error.value) and '--config.init_from.path=' in str(error.value)


def test_runtime_fields_may_change_on_resume(config, trained):
  config.model.update(attention_impl='xla', remat='full')
  exp = loop.setup(config, trained)
  exp.ckpt.close()
  assert int(exp.state.step) == 4


def test_optimizer_change_names_the_field(config, trained):
  config.optimizer.name = 'sgd'
  with pytest.raises(checkpoint.CheckpointMismatchError,
                     match=r"another optimizer state: config.optimizer changed \(name: 'adamw' "
                           r"-> 'sgd'.*init_from"):
    loop.setup(config, trained)


@pytest.mark.slow
def test_failed_save_stops_the_run_at_once_and_the_rerun_resumes_from_the_last_good(
    config, tmp_path, monkeypatch):
  original = json_checkpoint_handler.JsonCheckpointHandler._save_fn

  async def disk_full_at_step_4(self, x, directory):
    if '/4.' in str(directory) or str(directory).endswith('/4'):
      raise OSError(errno.ENOSPC, 'No space left on device')
    return await original(self, x, directory)

  monkeypatch.setattr(json_checkpoint_handler.JsonCheckpointHandler, '_save_fn',
                      disk_full_at_step_4)
  config.train.update(num_steps=8, log_every_steps=1)
  with pytest.raises(checkpoint.CheckpointSaveError,
                     match='No space left on device.*last good checkpoint is step 2'):
    loop.run(config, str(tmp_path))
  assert _steps(tmp_path) == [2]
  rows = [json.loads(line)['step'] for line in open(tmp_path / 'metrics.jsonl')]
  assert 4 <= max(rows) < 6  # Stopped before the next save (step 6), not at the end.
  monkeypatch.undo()
  loop.run(config, str(tmp_path))  # Resumes from step 2; rows after it are written once.
  assert _steps(tmp_path)[-1] == 8
  train_rows = [json.loads(line)['step'] for line in open(tmp_path / 'metrics.jsonl')
                if 'train/loss' in line]
  assert train_rows == list(range(1, 9))


@pytest.mark.parametrize('field, value, named', [
    ('dataset.num_frames', 0, 'config.dataset.num_frames=0'),
    ('checkpoint.every_steps', 0, 'config.checkpoint.every_steps=0'),
    ('train.log_every_steps', 0, 'config.train.log_every_steps=0'),
    ('train.batch_size', 0, 'config.train.batch_size=0'),
    ('train.num_steps', -5, 'config.train.num_steps=-5'),
    ('optimizer.learning_rate', float('nan'), 'config.optimizer.learning_rate=nan'),
    ('model.stochastic_depth', 1.0, 'config.model.stochastic_depth=1.0'),
    ('model.patch_size', (2, 0, 4), r'config.model.patch_size=\(2, 0, 4\)'),
])
def test_bad_config_values_are_refused_before_anything_is_built(config, tmp_path, field, value,
                                                                  named):
  group, name = field.split('.')
  config[group][name] = value
  with pytest.raises(ValueError, match=f'{named} is invalid: .*--config.{field}='):
    loop.run(config, str(tmp_path / 'workdir'))
  assert not os.path.exists(tmp_path / 'workdir')


def test_batch_not_divisible_by_the_mesh(config, tmp_path):
  config.train.batch_size = 12  # 8 devices.
  with pytest.raises(ValueError, match='batch_size=12 must be divisible by the 8 batch shards'):
    loop.run(config, str(tmp_path))


def test_metrics_after_a_resume_replace_the_rows_they_repeat(tmp_path):
  writer = metrics.MetricWriter(str(tmp_path))
  for s in (1, 2, 3):
    writer.write(s, {'train/loss': float(s)})
  with open(tmp_path / 'metrics.jsonl', 'a') as f:
    f.write('{"step": 4, "train/lo')  # Cut short by a kill.
  writer = metrics.MetricWriter(str(tmp_path), resume_step=2)
  writer.write(3, {'train/loss': 30.0})
  rows = [json.loads(line) for line in open(tmp_path / 'metrics.jsonl')]
  assert rows == [{'step': 1, 'train/loss': 1.0}, {'step': 2, 'train/loss': 2.0},
                  {'step': 3, 'train/loss': 30.0}]
