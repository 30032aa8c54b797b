"""Continual (frame-by-frame) inference of the 3D CNNs vs re-running the clip for every new frame
(Hedegaard & Iosifidis, ECCV 2022: CoX3D-M needs ~15x fewer FLOPs per prediction than X3D-M
re-run on each clip).

Per model of MODELS at its paper size, per new frame:
  clip FLOPs        the clip model re-run on the preset's clip (T frames): analytic
                    (flops.layer_flops: every conv and dense) and XLA's cost analysis;
  continual FLOPs   analytic: what one more frame costs the clip model without temporal padding
                    ((F(RF + s) - F(RF)) / s, RF its receptive field, s its temporal stride):
                    every layer computes its newest position only. XLA: the cost analysis of the
                    jitted step, which also computes the layers after I3D's temporal pool on the
                    frames whose results it keeps only every other frame;
  latency           median seconds of a jitted call at batch 1 on this machine, the clip model vs
                    the step, at --latency_crop (default: 112 on CPU, the paper's crop on a GPU);
  state             bytes of the continual state at batch 1 (paper size, float32 frames).
Then accuracy on synthetic_motion (ACCURACY_RUNS, each trained here, or found trained in
--runs_dir): the test top-1 over the 1280 test clips (8 frames) of the clip model as trained
(temporal padding), of its continual twin stepped over the same frames from a zero state (the
last step's prediction; its pool window set so that its receptive field covers the clip where it
can), and of the clip model without temporal padding (which the twin equals once warmed up).
About 25 minutes on 2 CPU cores with the training.

  python tools/benchmark.py continual [--runs_dir DIR] [--latency_crop 112]
"""
import os
import statistics
import time

from absl import flags
import numpy as np

from tools.benchmarks.common import results, runs

_RUNS = flags.DEFINE_string('runs_dir', None, 'continual: where the ACCURACY_RUNS train (a run '
                            'already trained there is reused; default: the scratch workdir).')
_CROP = flags.DEFINE_integer('latency_crop', None, 'continual: crop size of the latency '
                             'measurements (default: 112 on CPU, the paper crop on a GPU).')
_CALLS = flags.DEFINE_integer('latency_calls', 5, 'continual: timed calls per side.')

# Name -> (preset, argument): the paper sizes.
MODELS = {
    'CoSlow-R50 (8x8)': ('configs/cnn/slow_r50_k400.py', None),
    'CoI3D-R50 (8x8)': ('configs/cnn/i3d_r50_k400.py', None),
    'CoX3D-M': ('configs/cnn/x3d_k400.py', 'M'),
}
# Run name -> (preset, argument, config.model overrides): a receptive field (I3D-R50: 36 frames)
# far longer than the 8-frame clips, and one that fits them: an I3D-style ResNet-10 with 3x1x1
# kernels in stages 1-3 (7 frames, 8 with a 2-position pool window).
ACCURACY_RUNS = {
    'i3d_tiny': ('configs/cnn/i3d_r50_k400.py', 'tiny', {}),
    'i3d_r10_tiny': ('configs/cnn/i3d_r50_k400.py', 'tiny', {
        'depth': 10, 'stem_temporal_kernel': 1, 'temporal_pool': 1,
        'temporal_kernels': (3, 3, 3, 1)}),
}


def _float32(model_config):
  """A copy of `model_config` computing in float32 (the costs of the paper models)."""
  config = model_config.copy_and_resolve_references()
  config.dtype = 'float32'
  return config


def _median_seconds(fn, *args) -> float:
  """Median wall time of `fn(*args)` over --latency_calls calls after a compiling one."""
  import jax  # pylint: disable=import-outside-toplevel
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(_CALLS.value):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def _latency(model_config, frames: int, crop: int) -> tuple[float, float]:
  """(seconds per clip call, seconds per continual step) at batch 1 on (frames, crop, crop)."""
  # pylint: disable=import-outside-toplevel
  import flax.linen as nn
  import jax
  from vivit_jax import models
  from vivit_jax.models import continual
  model, twin = models.build(model_config), continual.build(model_config)
  clip = jax.random.normal(jax.random.key(0), (1, frames, crop, crop, 3))
  variables = nn.unbox(jax.jit(lambda x: model.init(jax.random.key(1), x, train=False))(clip))
  clip_s = _median_seconds(jax.jit(lambda v, x: model.apply(v, x, train=False)), variables, clip)
  state = twin.init_state(variables, 1, (crop, crop, 3))
  step_s = _median_seconds(jax.jit(twin.step), variables, state, clip[:, 0])
  return clip_s, step_s


def cost_row(name: str, preset: str, arg: str | None, latency_crop: int) -> dict:
  """One model's per-frame costs (see the module docstring)."""
  # pylint: disable=import-outside-toplevel
  import flax.linen as nn
  import jax
  import jax.numpy as jnp
  from vivit_jax import models
  from vivit_jax.models import continual, flops
  config = runs.preset(preset, arg)
  model_config = _float32(config.model)
  frames, crop = config.dataset.num_frames, config.dataset.crop_size
  twin = continual.build(model_config)
  field, stride = twin.receptive_field, twin.temporal_stride
  valid = model_config.copy_and_resolve_references()
  valid.temporal_padding = 'valid'
  marginal = (flops.layer_flops(valid, (field + stride, crop, crop)) -
              flops.layer_flops(valid, (field, crop, crop))) / stride
  model = models.build(model_config)
  variables = jax.eval_shape(lambda: nn.unbox(model.init(
      jax.random.key(0), jnp.zeros((1, frames, crop, crop, 3)), train=False)))
  frame = jax.ShapeDtypeStruct((1, crop, crop, 3), jnp.float32)
  state = jax.eval_shape(lambda v: twin.init_state(v, 1, (crop, crop, 3)), variables)
  step_xla = flops.cost_flops(jax.jit(twin.step).lower(
      flops.on_cpu(variables), flops.on_cpu(state), flops.on_cpu(frame)))
  clip_analytic = flops.layer_flops(model_config, (frames, crop, crop))
  clip_xla = flops.xla_flops(model_config, (frames, crop, crop))
  state_bytes = sum(np.prod(a.shape) * np.dtype(a.dtype).itemsize
                    for a in jax.tree.leaves(state))
  clip_s, step_s = _latency(model_config, frames, latency_crop)
  return dict(model=name, config=f"{preset}{':' + arg if arg else ''}",
              clip=f'{frames}x{crop}x{crop}', receptive_field=field, temporal_stride=stride,
              clip_gflops=clip_analytic / 1e9, clip_xla_gflops=(clip_xla or 0) / 1e9,
              step_gflops=marginal / 1e9, step_xla_gflops=(step_xla or 0) / 1e9,
              flop_ratio=clip_analytic / marginal, state_mib=state_bytes / 2 ** 20,
              latency_crop=latency_crop, clip_ms=clip_s * 1e3, step_ms=step_s * 1e3)


def _top1_counter(config, predictors: dict) -> dict:
  """{name: test top-1} of each predictor (video (B, T, S, S, 3) -> logits (B, K)) over the eval
  views of config.dataset, and 'agreement': how often the first two predict the same class."""
  from vivit_jax import data  # pylint: disable=import-outside-toplevel
  hits, count = dict.fromkeys([*predictors, 'agreement'], 0), 0
  for batch in data.make_eval_iterator(config.dataset,
                                       global_batch_size=config.train.eval_batch_size):
    real = batch['mask'] > 0
    preds = {name: np.asarray(fn(batch['video'])).argmax(-1) for name, fn in predictors.items()}
    for name, pred in preds.items():
      hits[name] += int(((pred == batch['label']) & real).sum())
    first, second = list(preds.values())[:2]
    hits['agreement'] += int(((first == second) & real).sum())
    count += int(real.sum())
  return {name: n / count for name, n in hits.items()} | {'views': count}


def accuracy_row(name: str, workdir: str) -> dict:
  """One ACCURACY_RUNS model trained (or reused), then its test top-1 as a clip model, as its
  continual twin from a zero state (last step) and, where the clip covers the twin's receptive
  field, as the clip model without temporal padding."""
  # pylint: disable=import-outside-toplevel
  import jax
  from vivit_jax import models
  from vivit_jax.models import continual
  from vivit_jax.train import loop, step
  preset, arg, overrides = ACCURACY_RUNS[name]
  config = runs.preset(preset, arg)
  config.model.update(overrides)
  run_dir = os.path.join(_RUNS.value or workdir, name)
  final, seconds = runs.timed_run(config, run_dir)
  exp = loop.restore_for_eval(config, run_dir)
  variables = jax.device_get(step.variables(exp.state.params, exp.state.batch_stats))
  frames, size = config.dataset.num_frames, config.dataset.crop_size
  conv_field = continual.build(config.model).receptive_field
  twin = continual.build(config.model, pool_window=max(1, frames - conv_field + 1))

  def twin_last(video):
    state = twin.init_state(variables, len(video), (size, size, 3))
    return twin.scan(variables, state, video)[1][:, -1]

  predictors = {'clip': lambda video: exp.model.apply(variables, video, train=False),
                'continual': twin_last}
  if twin.receptive_field <= frames:
    valid = config.model.copy_and_resolve_references()
    valid.temporal_padding = 'valid'
    unpadded = models.build(valid)
    predictors['unpadded'] = lambda video: unpadded.apply(variables, video, train=False)
  top1 = _top1_counter(config, {k: jax.jit(fn) for k, fn in predictors.items()})
  return dict(run=name, config=f"{preset}:{arg}" + ''.join(
      f',model.{k}={v}' for k, v in overrides.items()), steps=config.train.num_steps,
              train_seconds=round(seconds, 1), final_top1=final['eval/top1'],
              clip_frames=frames, receptive_field=twin.receptive_field, **top1)


def run(workdir: str, out: str) -> dict:
  import jax  # pylint: disable=import-outside-toplevel
  on_gpu = jax.default_backend() != 'cpu'
  rows = []
  for name, (preset, arg) in MODELS.items():
    crop = _CROP.value or (runs.preset(preset, arg).dataset.crop_size if on_gpu else 112)
    rows.append(cost_row(name, preset, arg, crop))
  record = dict(benchmark='continual', rows=rows,
                accuracy=[accuracy_row(name, workdir) for name in ACCURACY_RUNS],
                device=jax.devices()[0].device_kind, machine=results.machine())
  write(record, out)
  return record


def _accuracy_line(a: dict) -> str:
  unpadded = f"{a['unpadded']:.4f}" if 'unpadded' in a else '-'
  return (f"| {a['run']} | `{a['config']}` | {a['receptive_field']} / {a['clip_frames']} | "
          f"{a['clip']:.4f} | {a['continual']:.4f} | {unpadded} | {a['agreement']:.4f} |")


def table(record: dict) -> str:
  rows = ['| model | config | clip | receptive field (frames) | clip GFLOPs (XLA) | continual '
          'GFLOPs per frame (XLA) | FLOPs ratio | state MiB | latency crop | clip ms | step ms |',
          '|---|---|---|---|---|---|---|---|---|---|---|']
  rows += [f"| {r['model']} | `{r['config']}` | {r['clip']} | {r['receptive_field']}"
           f"{' (stride ' + str(r['temporal_stride']) + ')' if r['temporal_stride'] > 1 else ''}"
           f" | {r['clip_gflops']:.2f} ({r['clip_xla_gflops']:.2f}) | {r['step_gflops']:.3f} "
           f"({r['step_xla_gflops']:.3f}) | {r['flop_ratio']:.1f}x | {r['state_mib']:.1f} | "
           f"{r['latency_crop']} | {r['clip_ms']:.1f} | {r['step_ms']:.1f} |"
           for r in record['rows']]
  accuracy = ['| run | config | receptive field / clip (frames) | clip model (padded, as trained) '
              '| continual twin, last step | clip model, no temporal padding | twin = clip '
              'class |', '|---|---|---|---|---|---|---|']
  accuracy += [_accuracy_line(a) for a in record['accuracy']]
  return '\n'.join([
      '# Continual inference: one frame in, one prediction out', '',
      'Per new frame, re-running the clip model on its clip vs one step of its continual twin '
      '(`vivit_jax.models.continual`, the same weights). GFLOPs count 2 per multiply-add; the '
      'analytic counts are every conv and dense layer, XLA\'s also element-wise work. The '
      'continual analytic count is what one more frame costs the clip model without temporal '
      'padding; XLA\'s counts the jitted step (which computes the layers after I3D\'s stride-2 '
      'temporal pool on every frame and keeps their results every other frame). Latency: '
      f"median of jitted calls at batch 1 on {record['device']}, float32.", '', *rows, '',
      '## Accuracy on synthetic_motion', '',
      'Test top-1 over the 1280 test clips, each model trained 300 steps from scratch (its tiny '
      'preset). The twin is stepped over the clip\'s frames from a zero state and its last '
      'prediction taken, its global pool averaging as many positions as the clip allows. Where '
      'its receptive field fits the clip, that prediction is the clip model\'s without temporal '
      'padding (the "no temporal padding" column, equal up to float rounding); removing the '
      'padding the model was trained with is the model shift. Where the receptive field is far '
      'longer than the clip (I3D-R50), the twin\'s last output still describes frames before '
      'the clip began, i.e. its zero state: the twin needs streams longer than its receptive '
      'field, or a model trained or fine-tuned without temporal padding.', '', *accuracy, '',
      f"Machine: {record['machine']}.", '',
      'Regenerate: `python tools/benchmark.py continual`.', ''])


def write(record: dict, out: str) -> str:
  return results.write(record, out, table(record))
