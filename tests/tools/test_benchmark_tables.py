"""tools/benchmark.py's result files: the VideoMAE table names the fine-tuning split and how to
regenerate it, and a low-label run writes its own files; the default job's table gives the range
over seeds, the versions and the machine's load. (The tool runs in a subprocess: its absl
flags would clash with other tools' in this one.)"""
import json
import os
import subprocess
import sys

from tests.helpers import REPO

_WRITE = '''
import json, sys
from tests.helpers import load_tool
print(load_tool('benchmark').write_results({name!r}, json.load(sys.stdin), {out!r}))
'''


def _record(split: str, stem: str, seconds):
  arms = [dict(init=init, seed=seed, top1=top1, top5=1.0, loss=0.5, seconds=10.0)
          for init, seed, top1 in (('pre-trained', 0, 0.9), ('scratch', 0, 0.5),
                                   ('pre-trained', 1, 0.8), ('scratch', 1, 0.6))]
  return dict(benchmark=stem, machine='test',
              pretrain=dict(config='p', steps=10, final_eval_loss=0.97, seconds=seconds,
                            reconstruction='r.png'),
              finetune=dict(config='f', steps=5, train_split=split, arms=arms))


def _write(record: dict, out, name: str = 'videomae_pretraining') -> str:
  """write_results of benchmark `name` into `out`; returns the table."""
  done = subprocess.run([sys.executable, '-c', _WRITE.format(name=name, out=str(out))], cwd=REPO,
                        input=json.dumps(record), capture_output=True, text=True, timeout=60)
  assert done.returncode == 0, done.stderr
  return done.stdout


def test_low_label_results_get_their_own_files(tmp_path):
  text = _write(_record('train[:10%]', 'videomae_pretraining_train_10', None), tmp_path)
  assert sorted(os.listdir(tmp_path)) == ['videomae_pretraining_train_10.json',
                                          'videomae_pretraining_train_10.md']
  assert 'Mean test top-1: pre-trained 0.8500, scratch 0.5500' in text
  assert "5 steps for each arm on `train[:10%]`" in text and '(an earlier run, reused)' in text
  assert "videomae_pretraining --finetune_split='train[:10%]'`" in text
  record = json.load(open(tmp_path / 'videomae_pretraining_train_10.json'))
  assert record['finetune']['train_split'] == 'train[:10%]'


def test_full_data_table_keeps_its_command(tmp_path):
  text = _write(_record('train', 'videomae_pretraining', 12.5), tmp_path)
  assert '10 steps (12.5 s)' in text and 'on `train`' in text
  assert 'Regenerate: `python tools/benchmark.py videomae_pretraining`.' in text


def test_default_job_table_gives_the_range_versions_and_load(tmp_path):
  runs = [dict(seed=seed, top1=top1, top5=1.0, seconds=180.0, clips_per_s=250.0)
          for seed, top1 in ((0, 0.9945), (1, 0.9883))]
  record = dict(benchmark='default_job', config='configs/default.py', steps=600, batch=64,
                test_clips=1280, runs=runs, machine='test', load_average=[3.5, 4.0],
                versions=dict(python='3.11.7', jax='0.10.2', flax='0.12.8', tensorflow='2.21.0'))
  text = _write(record, tmp_path, 'default_job')
  assert '| 1 | 0.9883 | 1.0000 | 180.0 | 250.0 |' in text
  assert 'Test top-1 over seeds: 0.9883-0.9945.' in text
  assert 'jax 0.10.2, flax 0.12.8, tensorflow 2.21.0' in text
  assert 'load average 3.5 before, 4.0 after (other work shared the cores' in text
  assert 'Regenerate: `python tools/benchmark.py default_job --seeds 0,1`.' in text
