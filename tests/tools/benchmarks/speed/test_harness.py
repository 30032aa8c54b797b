"""One run of the speed benchmark (speed.harness): a row per model, ours against the HF peer
phase by phase, FLOPs where the backend gives no cost analysis, the largest-batch search, error
rows."""
import os

import jax
import numpy as np
import pytest

from tests.tools.benchmarks.speed.small_configs import small
from tools.benchmarks.speed import harness, ours, report
from configs import speed_benchmark
from vivit_jax.models import flops


def test_row_measures_ours_and_the_hf_peer(measured):
  r, config = measured.row, small('videomae_finetune')
  shape = (4, 32, 32)
  assert r['params'] == flops.param_count(config.model, shape) == r['hf']['params']
  assert r['gflops_forward_per_clip'] == pytest.approx(flops.xla_flops(config.model, shape) / 1e9)
  # Forward + backward (~2x forward) + update: between 2.5 and 4 forwards.
  assert 2.5 < r['gflops_train_per_clip'] / r['gflops_forward_per_clip'] < 4
  assert r['step_ms'] > 0 and r['compile_s'] > 0 and r['compiled_memory_bytes'] > 0
  assert r['clips_per_s'] == pytest.approx(2000 / r['step_ms'])
  assert r['train_flops_per_s'] == pytest.approx(r['gflops_train_per_clip'] * 2e9 / r['step_ms']
                                                 * 1e3)
  assert r['mfu'] == pytest.approx(r['train_flops_per_s'] / 1e11)
  assert r['ratio'] == pytest.approx(r['clips_per_s'] / r['hf']['clips_per_s'])
  assert (r['hf']['model'], r['hf']['attention'], r['clip']) == (
      'VideoMAEForVideoClassification', 'sdpa', '4x32^2')
  assert r['flops_source'] == dict(train='xla-cpu', forward='xla-cpu')
  # Like with like: forward, forward + backward and the step, ours and HF, each ratio HF / ours.
  assert [p['phase'] for p in r['phases']] == ['forward', 'forward_backward', 'step']
  for p in r['phases']:
    assert p['ours_ms'] > 0 and p['hf_ms'] > 0 and p['ratio'] == pytest.approx(
        p['hf_ms'] / p['ours_ms'])
  assert r['phases'][2]['ours_ms'] == pytest.approx(r['step_ms'])
  assert r['phases'][2]['hf_ms'] == pytest.approx(r['hf']['step_ms'])
  assert r['hf']['torch_threads'] in (1, os.cpu_count()) and r['phases_compile_s'] > 0


_RECORD = dict(benchmark='models', device='cpu-x86_64-2core', date='2026-01-02', size='tiny',
               matmul_tflops=0.1, matmul_dtype='float32', matmul_size=1024, rows=[],
               notes=['a note'], software='jax', command='python tools/benchmark.py models')


@pytest.mark.parametrize('name', ['vivit1', 'videomae_pretrain'])
def test_harness_reports_flops_and_mfu_where_the_backend_gives_no_cost_analysis(
    name, monkeypatch):
  """GPU and TPU PJRT plugins return None from cost_analysis() (the H200 run crashed on it):
  with every backend doing so, the row still has FLOPs (analytic) and an MFU. (The step timed
  is a stand-in: its FLOPs, counted as ours.compile_train_step counts them, are under test.)"""
  monkeypatch.setattr(jax.stages.Lowered, 'cost_analysis', lambda self: None)
  monkeypatch.setattr(jax.stages.Compiled, 'cost_analysis', lambda self: None)
  config = small(name)
  shape = ours.clip_shape(config)
  assert flops.xla_flops(config.model, shape) is None

  def compile_train_step(config, batch_size):
    train_flops, source = ours.model_train_flops(config, batch_size)
    video = np.zeros((batch_size, *ours.clip_shape(config), 3), np.float32)
    return ours.Compiled(run=lambda state, batch: (state, {}), state=None,
                         batch={'video': video}, compile_s=1.0, train_flops=train_flops,
                         memory=None, flops_source=source)

  monkeypatch.setattr(ours, 'compile_train_step', compile_train_step)
  r = harness.row(name, config, batch_size=2, steps=1, matmul_rate=1e11, with_hf=False,
                  warmup=1)
  analytic = flops.analytic_flops(config.model, shape)
  assert r['flops_source'] == dict(train='analytic', forward='analytic')
  assert r['gflops_forward_per_clip'] == pytest.approx(analytic / 1e9)
  assert r['gflops_train_per_clip'] == pytest.approx(3 * analytic / 1e9)
  assert r['mfu'] == pytest.approx(r['train_flops_per_s'] / 1e11) and r['mfu'] > 0
  assert '*' in report.table(dict(_RECORD, rows=[r]))


def test_max_batch_search_starts_at_the_prediction(monkeypatch):
  tried = []
  monkeypatch.setattr(ours, 'compiled_bytes', lambda config, b: 1000 + 300 * b)
  monkeypatch.setattr(ours, 'fits', lambda config, b: tried.append(b) or b <= 36)
  found = harness.max_batch('vivit1', 'tiny', 'none', capacity=1000 + 300 * 38, tolerance=0.1)
  assert found == dict(model='vivit1', remat='none', batch=36, fails_at=38,
                       capacity_bytes=1000 + 300 * 38, predicted=38, fixed_bytes=1000,
                       per_clip_bytes=300)
  assert tried == [38, 34, 36]
  assert 'vivit1 remat=none: 36 (38 does not fit; compiled memory predicted 38)' == \
      report._max_batch(found)  # pylint: disable=protected-access


def test_a_failing_model_gets_an_error_row_and_the_run_goes_on(monkeypatch):
  def row(name, *args, **kwargs):
    if name == 'c3d':
      raise RuntimeError('cudnn says no')
    return dict(model=name, measured=True)

  monkeypatch.setattr(harness, 'row', row)
  updates = []
  record = harness.run(['c3d', 'i3d'], 'tiny', steps=1,
                       on_update=lambda r: updates.append(len(r['rows'])))
  assert record['rows'] == [dict(model='c3d', error='RuntimeError: cudnn says no'),
                            dict(model='i3d', measured=True)]
  assert updates == [1, 2]
  assert 'failed: RuntimeError: cudnn says no' in report.table(dict(record, rows=record['rows'][:1]))


def test_remat_arm_needs_the_config_field():
  config = speed_benchmark.benchmark_config('vivit1', 'real')
  if 'remat' in config.model:
    assert harness.with_remat(config, 'full').model.remat == 'full'
  else:
    assert harness.with_remat(config, 'none') is config
    with pytest.raises(ValueError, match='needs config.model.remat'):
      harness.with_remat(config, 'full')
