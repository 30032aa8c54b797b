"""The default job's table gives the range over seeds, the versions, the machine's load and the
command that regenerates it."""
import json

from tools.benchmarks import default_job


def test_default_job_table_gives_the_range_versions_and_load(tmp_path):
  runs = [dict(seed=seed, top1=top1, top5=1.0, seconds=180.0, clips_per_s=250.0)
          for seed, top1 in ((0, 0.9945), (1, 0.9883))]
  record = dict(benchmark='default_job', config='configs/default.py', steps=600, batch=64,
                test_clips=1280, runs=runs, machine='test', load_average=[3.5, 4.0],
                versions=dict(python='3.11.7', jax='0.10.2', flax='0.12.8', tensorflow='2.21.0'))
  text = default_job.write(record, str(tmp_path))
  assert '| 1 | 0.9883 | 1.0000 | 180.0 | 250.0 |' in text
  assert 'Test top-1 over seeds: 0.9883-0.9945.' in text
  assert 'jax 0.10.2, flax 0.12.8, tensorflow 2.21.0' in text
  assert 'load average 3.5 before, 4.0 after (other work shared the cores' in text
  assert 'Regenerate: `python tools/benchmark.py default_job --seeds 0,1`.' in text
  assert json.loads((tmp_path / 'default_job.json').read_text()) == record
  assert (tmp_path / 'default_job.md').read_text() == text
