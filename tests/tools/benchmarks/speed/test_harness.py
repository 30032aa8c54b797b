"""The speed benchmark (`tools/benchmark.py models`): records, the HF peers' configs, the largest
batch search, the GPU-size configs and the README table."""
import json
import os

import jax
import numpy as np
import optax
import pytest

from vivit_jax.benchmarking import harness, hf_peers, ours, presets, report
from vivit_jax.models import flops
from vivit_jax.weights import hf


def _small(name: str):
  """`name`'s tiny benchmark config shrunk further (1-2 layers, width 32, 4 x 32^2 clips)."""
  config = presets.benchmark_config(name, 'tiny')
  config.model.update(hidden_size=32, num_heads=2, mlp_dim=64, num_layers=1)
  if name == 'videomae_pretrain':
    config.model.update(decoder_hidden_size=16, decoder_num_heads=2, decoder_mlp_dim=32,
                        decoder_num_layers=1)
  if name == 'timesformer':
    config.model.update(num_frames=4, image_size=32)  # Its clip size is a model field.
  crop = 64 if name == 'videomae_pretrain' else 32  # Tube masking 0.9 needs > 10 positions.
  config.dataset.update(num_frames=4, crop_size=crop)
  return config


@pytest.mark.slow
def test_row_measures_ours_and_the_hf_peer():
  config = _small('vivit1')
  r = harness.row('vivit1', config, batch_size=2, steps=2, matmul_rate=1e11)
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
      'VivitForVideoClassification', 'sdpa', '4x32^2')
  assert r['flops_source'] == dict(train='xla-cpu', forward='xla-cpu')
  # Like with like: forward, forward + backward and the step, ours and HF, each ratio HF / ours.
  assert [p['phase'] for p in r['phases']] == ['forward', 'forward_backward', 'step']
  for p in r['phases']:
    assert p['ours_ms'] > 0 and p['hf_ms'] > 0 and p['ratio'] == pytest.approx(
        p['hf_ms'] / p['ours_ms'])
  assert r['phases'][2]['ours_ms'] == pytest.approx(r['step_ms'])
  assert r['phases'][2]['hf_ms'] == pytest.approx(r['hf']['step_ms'])
  assert r['hf']['torch_threads'] in (1, os.cpu_count()) and r['phases_compile_s'] > 0


@pytest.mark.slow
def test_phases_compute_the_train_steps_loss_and_gradients():
  """Our forward and forward + backward calls give the step's own loss and gradients (before
  clipping and the update) at the same state and batch."""
  config = _small('videomae_finetune')
  compiled = ours.compile_train_step(config, 2, count_flops=False)
  phases = ours.compile_phases(config, compiled)
  *_, (forward, forward_backward) = ours._train_step(  # pylint: disable=protected-access
      config, 2, phases=True)
  state = compiled.state
  loss = forward(state.params, state.batch_stats, compiled.batch)
  loss_again, grads = forward_backward(state.params, state.batch_stats, compiled.batch)
  compiled.state, metrics = compiled.run(state, compiled.batch)  # Donates `state`.
  step_loss = float(metrics['loss_sum']) / float(metrics['count'])
  assert float(loss) == pytest.approx(float(loss_again), rel=1e-6)
  assert float(loss) == pytest.approx(step_loss, rel=1e-5)
  assert float(optax.tree.norm(grads)) == pytest.approx(float(metrics['grad_norm']), rel=1e-4)
  phases.forward()
  phases.forward_backward()  # Reads the state the step left (the old one was donated).


@pytest.mark.parametrize('name', ['vivit1', 'videomae_pretrain'])
def test_harness_reports_flops_and_mfu_where_the_backend_gives_no_cost_analysis(
    name, monkeypatch):
  """GPU and TPU PJRT plugins return None from cost_analysis() (the H200 run crashed on it):
  with every backend doing so, the row still has FLOPs (analytic) and an MFU."""
  monkeypatch.setattr(jax.stages.Lowered, 'cost_analysis', lambda self: None)
  monkeypatch.setattr(jax.stages.Compiled, 'cost_analysis', lambda self: None)
  config = _small(name)
  shape = ours.clip_shape(config)
  assert flops.xla_flops(config.model, shape) is None
  r = harness.row(name, config, batch_size=2, steps=1, matmul_rate=1e11, with_hf=False,
                  warmup=1)
  analytic = flops.analytic_flops(config.model, shape)
  assert r['flops_source'] == dict(train='analytic', forward='analytic')
  assert r['gflops_forward_per_clip'] == pytest.approx(analytic / 1e9)
  assert r['gflops_train_per_clip'] == pytest.approx(3 * analytic / 1e9)
  assert r['mfu'] == pytest.approx(r['train_flops_per_s'] / 1e11) and r['mfu'] > 0
  assert '*' in report.table(dict(_RECORD, rows=[r]))


def test_flops_are_counted_on_the_cpu_backend(monkeypatch):
  """The counting lowerings run on jax.devices('cpu') (which gives a cost analysis), whatever the
  default device: a Lowered of another platform reports None, as GPU/TPU plugins do."""
  real = jax.stages.Lowered.cost_analysis
  platforms = []

  def cost_analysis(self):
    platforms.append(self._lowering.compile_args['backend'].platform)  # pylint: disable=protected-access
    return real(self) if platforms[-1] == 'cpu' else None

  monkeypatch.setattr(jax.stages.Lowered, 'cost_analysis', cost_analysis)
  config = _small('vivit1')
  counted, source = ours.model_train_flops(config, 2)
  assert source == 'xla-cpu' and counted > 0
  assert flops.forward_flops(config.model, ours.clip_shape(config))[1] == 'xla-cpu'
  assert set(platforms) == {'cpu'}


def test_cost_flops_reads_every_shape_of_analysis():
  class Stage:
    def __init__(self, analysis):
      self.analysis = analysis

    def cost_analysis(self):
      if isinstance(self.analysis, Exception):
        raise self.analysis
      return self.analysis

  assert flops.cost_flops(Stage({'flops': 12.0})) == 12.0
  assert flops.cost_flops(Stage([{'flops': 3}])) == 3.0  # Older JAX: one dict per program.
  for missing in (None, {}, [], {'flops': -1.0}, NotImplementedError('no cost analysis')):
    assert flops.cost_flops(Stage(missing)) is None


@pytest.mark.parametrize('name', ['videomae_pretrain', 'vivit2'])
def test_summary_from_step_times(name):
  config = _small(name)
  video = np.zeros((2, *ours.clip_shape(config), 3), np.float32)
  compiled = ours.Compiled(run=None, state=None, batch={'video': video}, compile_s=1.5,
                           train_flops=4e9, memory=None)
  record = ours.summary(config, compiled, [0.5, 0.25, 1.0])
  assert record['step_ms'] == 500 and record['fastest_step_ms'] == 250
  assert record['clips_per_s'] == 4 and record['train_flops_per_s'] == 8e9
  assert record['gflops_train_per_clip'] == 2 and record['compile_s'] == 1.5
  assert record['peak_device_bytes'] is None  # CPU keeps no memory statistics.
  assert record['params'] == flops.param_count(config.model, ours.clip_shape(config))
  # Pre-training's forward too (xla_flops draws its masks from a fixed key).
  assert record['gflops_forward_per_clip'] == pytest.approx(
      flops.xla_flops(config.model, ours.clip_shape(config)) / 1e9)
  assert record['flops_source'] == dict(train=None, forward='xla-cpu')


@pytest.mark.parametrize('name', ['vivit1', 'timesformer', 'videomae_finetune',
                                  'videomae_pretrain'])
def test_hf_peer_reads_back_as_our_config(name, tmp_path):
  """The HF model built from our config, saved and read by weights.hf, gives our config back
  (and the same parameter count)."""
  config = _small(name)
  class_name, fields = hf_peers.hf_config(config.model, ours.clip_shape(config))
  model, _ = hf_peers.build_model(class_name, fields)
  model.save_pretrained(tmp_path)
  read, _ = hf.load_pretrained(str(tmp_path))
  for field in ('name', 'hidden_size', 'num_layers', 'num_heads', 'mlp_dim', 'hidden_act',
                'layer_norm_eps', 'patch_size', 'num_classes', 'decoder_hidden_size',
                'decoder_num_layers', 'tubelet_size', 'use_mean_pooling', 'encoder_norm',
                'stochastic_depth', 'variant', 'classifier'):
    if field == 'stochastic_depth' and name == 'videomae_finetune':
      continue  # HF VideoMAE has no stochastic depth (the benchmark notes it).
    if field in config.model and field in read:
      ours_value, read_value = config.model[field], read[field]
      if field == 'patch_size':
        ours_value, read_value = tuple(ours_value) if not isinstance(ours_value, int) else (
            ours_value), read_value
      assert ours_value == read_value, field
  assert sum(p.numel() for p in model.parameters()) == flops.param_count(
      config.model, ours.clip_shape(config))


def test_no_hf_peer_for_models_transformers_lacks():
  for name in ('vivit2', 'vivit3', 'vivit4', 'i3d', 'slowfast', 'c3d'):
    config = presets.benchmark_config(name, 'tiny')
    assert hf_peers.hf_config(config.model, ours.clip_shape(config)) is None


def test_largest_batch_doubles_then_bisects():
  tried = []

  def fits_at(b):
    tried.append(b)
    return b <= 37

  assert ours.largest_batch(fits_at) == (37, 38)
  assert tried == [1, 2, 4, 8, 16, 32, 64, 48, 40, 36, 38, 37]
  assert ours.largest_batch(lambda b: False) == (0, 1)
  assert ours.largest_batch(lambda b: True, limit=64) == (64, None)
  assert ours.is_oom(RuntimeError('RESOURCE_EXHAUSTED: Out of memory while trying to allocate'))
  assert not ours.is_oom(ValueError('bad shape'))


@pytest.mark.parametrize('start, expected_tries', [(35, [35, 38, 36, 37]), (40, [40, 37, 38])])
def test_largest_batch_from_a_prediction_steps_by_the_growth(start, expected_tries):
  tried = []

  def fits_at(b):
    tried.append(b)
    return b <= 37

  assert ours.largest_batch(fits_at, start=start, growth=1.0625) == (37, 38)
  assert tried == expected_tries
  tried.clear()  # Within 10%: 35 runs, 38 does not, no bisection.
  assert ours.largest_batch(fits_at, start=35, growth=1.0625, tolerance=0.1) == (35, 38)
  assert tried == [35, 38]


def test_memory_at_two_batches_predicts_the_largest_batch():
  linear = lambda b: 1000 + 300 * b  # noqa: E731
  assert ours.predict_largest_batch(linear, linear(37) + 299) == dict(
      predicted=37, fixed_bytes=1000, per_clip_bytes=300)
  config = _small('vivit1')
  assert 0 < ours.compiled_bytes(config, 2) < ours.compiled_bytes(config, 16)
  assert ours.device_capacity() is None  # CPU: no limit, so a search doubles from 1.


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
  config = presets.benchmark_config('vivit1', 'real')
  if 'remat' in config.model:
    assert harness.with_remat(config, 'full').model.remat == 'full'
  else:
    assert harness.with_remat(config, 'none') is config
    with pytest.raises(ValueError, match='needs config.model.remat'):
      harness.with_remat(config, 'full')


def test_real_sizes_are_the_presets_on_gpu_settings():
  sizes = {'vivit1': (32, 224), 'videomae_pretrain': (16, 224), 'i3d': (8, 224),
           'slowfast': (32, 224), 'c3d': (16, 112), 'timesformer': (8, 224)}
  for name, (frames, crop) in sizes.items():
    config = presets.benchmark_config(name, 'real')
    assert (config.dataset.num_frames, config.dataset.crop_size) == (frames, crop), name
    assert config.model.dtype == 'bfloat16'
    assert config.model.get('attention_impl', 'cudnn') == 'cudnn'
  assert presets.benchmark_config('vivit1', 'real').model.hidden_size == 768
  assert presets.benchmark_config('vivit1', 'tiny').model.hidden_size == 192
  with pytest.raises(ValueError, match="Unknown --models \\['vivit9'\\]"):
    presets.check_names(['vivit1', 'vivit9'])
  with pytest.raises(ValueError, match="--size 'huge'"):
    presets.benchmark_config('vivit1', 'huge')


_RECORD = dict(benchmark='models', device='cpu-x86_64-2core', date='2026-01-02', size='tiny',
               matmul_tflops=0.1, matmul_dtype='float32', matmul_size=1024, rows=[],
               notes=['a note'], software='jax', command='python tools/benchmark.py models')


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
