"""The speed benchmark's outputs (speed.report): the run's JSON and the regenerated README."""
import json

from tools.benchmarks.speed import report


def test_report_writes_json_and_regenerates_the_readme(tmp_path):
  row = dict(model='c3d', clip='4x32^2', batch=2, params=2.5e6, gflops_train_per_clip=1.5,
             compile_s=3.0, step_ms=100.0, clips_per_s=20.0, mfu=0.25,
             compiled_memory_bytes=2 ** 30, hf=None, ratio=None)
  record = dict(benchmark='models', device=report.device_name(), date='2026-01-02', size='tiny',
                matmul_tflops=0.1, matmul_dtype='float32', matmul_size=1024, rows=[row],
                notes=['a note'], software='jax', command='python tools/benchmark.py models',
                max_batch=[dict(model='c3d', remat='none', batch=48)])
  text = report.write(record, str(tmp_path))
  assert record['device'].startswith('cpu-') and record['device'].endswith('core')
  assert json.loads((tmp_path / f"{record['device']}-2026-01-02.json").read_text()) == record
  readme = (tmp_path / 'README.md').read_text()
  assert text in readme and readme.startswith('# Speed')
  assert '| c3d | tiny | 4x32^2 x 2 | 2.50 | 1.50 | 3.0 | 100.0 | 20.0 | 25.0% | 1.00 GiB | - | - |' \
      in text
  assert 'c3d remat=none: 48' in text
