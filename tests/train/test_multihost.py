"""Two JAX processes (2 simulated CPU devices each, gloo collectives) build the dataset once, then
train, checkpoint and resume exactly like one process with 4 devices."""
import json
import os
import socket
import subprocess
import sys

import pytest

from tests.helpers import REPO
from tests.train.multihost_worker import EVAL_CLIPS

WORKER = os.path.join(REPO, 'tests', 'train', 'multihost_worker.py')


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _env(devices: int) -> dict:
  kept = [f for f in os.environ.get('XLA_FLAGS', '').split()  # E.g. conftest's compile flags.
          if not f.startswith('--xla_force_host_platform_device_count')]
  env = dict(os.environ, JAX_PLATFORMS='cpu', TF_CPP_MIN_LOG_LEVEL='3',
             XLA_FLAGS=' '.join(kept + [f'--xla_force_host_platform_device_count={devices}']))
  env.pop('JAX_NUM_CPU_DEVICES', None)
  return env


def _run(workdir, data_dir, out, *, processes: int, devices_per_process: int,
         sigterm_at: int | None = None) -> dict:
  """Runs the worker as `processes` processes; returns process 0's result."""
  args = [sys.executable, WORKER, '--workdir', str(workdir), '--data_dir', data_dir,
          '--out', str(out)] + (['--sigterm_at', str(sigterm_at)] if sigterm_at else [])
  if processes > 1:
    args += ['--coordinator', f'127.0.0.1:{_free_port()}', '--num_processes', str(processes)]
  procs = [subprocess.Popen(args + (['--process_id', str(i)] if processes > 1 else []),
                            env=_env(devices_per_process), cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
           for i in range(processes)]
  outputs = [p.communicate(timeout=600)[0] for p in procs]
  for p, output in zip(procs, outputs):
    assert p.returncode == 0, output[-3000:]
  with open(out) as f:
    return json.load(f)


@pytest.fixture(scope='module')
def runs(synthetic_data_dir, tmp_path_factory):
  tmp = tmp_path_factory.mktemp('multihost')
  single = _run(tmp / 'single', synthetic_data_dir, tmp / 'single.json', processes=1,
                devices_per_process=4)
  # An empty data dir: process 0 builds synthetic_motion while process 1 waits, then reads it.
  # Process 1 alone gets SIGTERM while reading batch 4.
  multi = _run(tmp / 'multi', str(tmp / 'tfds'), tmp / 'multi.json', processes=2,
               devices_per_process=2, sigterm_at=4)
  return single, multi, tmp


@pytest.mark.slow
def test_two_processes_match_one_process(runs):
  single, multi, _ = runs
  assert (single['processes'], multi['processes']) == (1, 2)
  assert single['devices'] == multi['devices'] == 4
  assert single['step'] == multi['step'] == 8
  assert sorted(map(int, single['losses'])) == sorted(map(int, multi['losses'])) == list(
      range(1, 9))
  for k in single['losses']:
    assert multi['losses'][k] == pytest.approx(single['losses'][k], rel=1e-5, abs=1e-6)
  assert single['losses']['8'] != single['losses']['1']  # It trained.
  assert multi['eval']['eval/count'] == single['eval']['eval/count'] == EVAL_CLIPS
  for k in ('eval/loss', 'eval/top1', 'eval/top5'):
    assert multi['eval'][k] == pytest.approx(single['eval'][k], rel=1e-5, abs=1e-6)
  assert multi['params'] == pytest.approx(single['params'], rel=1e-5, abs=1e-6)


def test_a_sigterm_on_one_process_stops_all_at_one_step(runs):
  single, multi, tmp = runs
  assert single['stopped_at'] is None
  # Process 0 never got the signal, yet stopped with process 1 (JAX's preemption sync point:
  # the step after the furthest one any process had reached) and resumed exactly (losses above).
  assert 4 <= multi['stopped_at'] < 8
  assert str(multi['stopped_at']) in os.listdir(tmp / 'multi' / 'checkpoints') or (
      multi['stopped_at'] < 5)  # (keep=3: an early stop's checkpoint is rotated out later.)


def test_only_process_zero_writes_logs(runs):
  _, _, tmp = runs
  with open(tmp / 'multi' / 'metrics.jsonl') as f:
    steps = [json.loads(line)['step'] for line in f]
  assert steps.count(8) == 2  # One train line and one eval line, from process 0 alone.
  assert '8' in os.listdir(tmp / 'multi' / 'checkpoints')
  assert os.listdir(tmp / 'tfds' / 'synthetic_motion') == ['1.0.0']  # Built, no leftover.
