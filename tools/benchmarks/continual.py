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
Then accuracy on synthetic_motion: the tiny I3D (configs/cnn/i3d_r50_k400.py:tiny, trained here
in about 10 minutes on 2 CPU cores, or --trained_workdir) evaluated on the 1280 test clips as a
clip model and as its continual twin stepped over the same clips' frames from a zero state (the
last step's prediction). About 15 minutes on 2 CPU cores with the training.

  python tools/benchmark.py continual [--trained_workdir DIR] [--latency_crop 112]
"""
import os
import statistics
import time

from absl import flags
import numpy as np

from tools.benchmarks.common import results, runs

_TRAINED = flags.DEFINE_string('trained_workdir', None, 'continual: a workdir of '
                               'configs/cnn/i3d_r50_k400.py:tiny already trained (default: '
                               'train one).')
_CROP = flags.DEFINE_integer('latency_crop', None, 'continual: crop size of the latency '
                             'measurements (default: 112 on CPU, the paper crop on a GPU).')
_CALLS = flags.DEFINE_integer('latency_calls', 5, 'continual: timed calls per side.')

# Name -> (preset, argument): the paper sizes.
MODELS = {
    'CoSlow-R50 (8x8)': ('configs/cnn/slow_r50_k400.py', None),
    'CoI3D-R50 (8x8)': ('configs/cnn/i3d_r50_k400.py', None),
    'CoX3D-M': ('configs/cnn/x3d_k400.py', 'M'),
}
ACCURACY_PRESET = ('configs/cnn/i3d_r50_k400.py', 'tiny')


def _float32(model_config):
  """A copy of `model_config` computing in float32 (the costs of the paper models)."""
  config = model_config.copy_and_resolve_references()
  config.dtype = 'float32'
  return config


def _abstract(tree):
  import jax  # pylint: disable=import-outside-toplevel
  return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), tree)


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
  variables = _abstract(jax.eval_shape(lambda: nn.unbox(model.init(
      jax.random.key(0), jnp.zeros((1, frames, crop, crop, 3)), train=False))))
  frame = jax.ShapeDtypeStruct((1, crop, crop, 3), jnp.float32)
  state = _abstract(jax.eval_shape(lambda v: twin.init_state(v, 1, (crop, crop, 3)), variables))
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


def accuracy(workdir: str) -> dict:
  """Test top-1 of the trained tiny I3D as a clip model (its final evaluation) and as its
  continual twin over the same views, stepped from a zero state (the last step's logits), and
  how often the two agree."""
  # pylint: disable=import-outside-toplevel
  import jax
  from vivit_jax import data
  from vivit_jax.models import continual
  from vivit_jax.train import loop, step
  config = runs.preset(*ACCURACY_PRESET)
  run_dir = _TRAINED.value or os.path.join(workdir, 'i3d_tiny')
  final, seconds = runs.timed_run(config, run_dir)
  exp = loop.restore_for_eval(config, run_dir)
  variables = jax.device_get(step.variables(exp.state.params, exp.state.batch_stats))
  twin = continual.build(config.model)
  size = config.dataset.crop_size
  clip_fn = jax.jit(lambda v, x: exp.model.apply(v, x, train=False))
  twin_fn = jax.jit(lambda v, s, x: twin.scan(v, s, x)[1][:, -1])
  hits = {'clip': 0, 'continual': 0, 'agree': 0}
  count = 0
  for batch in data.make_eval_iterator(config.dataset,
                                       global_batch_size=config.train.eval_batch_size):
    video, real = batch['video'], batch['mask'] > 0
    state = twin.init_state(variables, len(video), (size, size, 3))
    clip_pred = np.asarray(clip_fn(variables, video)).argmax(-1)
    twin_pred = np.asarray(twin_fn(variables, state, video)).argmax(-1)
    hits['clip'] += int(((clip_pred == batch['label']) & real).sum())
    hits['continual'] += int(((twin_pred == batch['label']) & real).sum())
    hits['agree'] += int(((clip_pred == twin_pred) & real).sum())
    count += int(real.sum())
  return dict(config=':'.join(ACCURACY_PRESET), steps=config.train.num_steps,
              train_seconds=round(seconds, 1), final_top1=final['eval/top1'], views=count,
              clip_top1=hits['clip'] / count, continual_top1=hits['continual'] / count,
              agreement=hits['agree'] / count, receptive_field=twin.receptive_field,
              clip_frames=config.dataset.num_frames)


def run(workdir: str, out: str) -> dict:
  import jax  # pylint: disable=import-outside-toplevel
  on_gpu = jax.default_backend() != 'cpu'
  rows = []
  for name, (preset, arg) in MODELS.items():
    crop = _CROP.value or (runs.preset(preset, arg).dataset.crop_size if on_gpu else 112)
    rows.append(cost_row(name, preset, arg, crop))
  record = dict(benchmark='continual', rows=rows, accuracy=accuracy(workdir),
                device=jax.devices()[0].device_kind, machine=results.machine())
  write(record, out)
  return record


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
  a = record['accuracy']
  return '\n'.join([
      '# Continual inference: one frame in, one prediction out', '',
      'Per new frame, re-running the clip model on its clip vs one step of its continual twin '
      '(`vivit_jax.models.continual`, the same weights). GFLOPs count 2 per multiply-add; the '
      'analytic counts are every conv and dense layer, XLA\'s also element-wise work. The '
      'continual analytic count is what one more frame costs the clip model without temporal '
      'padding; XLA\'s counts the jitted step (which computes the layers after I3D\'s stride-2 '
      'temporal pool on every frame and keeps their results every other frame). Latency: '
      f"median of jitted calls at batch 1 on {record['device']}, float32.", '', *rows, '',
      f"## Accuracy on synthetic_motion (`{a['config']}`, {a['steps']} steps)", '',
      f"Test top-1 over {a['views']} clips of {a['clip_frames']} frames: the clip model "
      f"{a['clip_top1']:.4f} (its run's final evaluation: {a['final_top1']:.4f}); the continual "
      f"twin stepped over the same frames from a zero state, last step: "
      f"{a['continual_top1']:.4f}; the two predict the same class on {a['agreement']:.4f} of "
      f"the clips. The twin's receptive field is {a['receptive_field']} frames, longer than the "
      f"clip: its zero initial state stands where the clip model pads with zeros, but only "
      f"before the clip and never after it, so the prediction differs from the clip model's "
      f"(the model shift of removing temporal padding, which the paper removes by training or "
      f"fine-tuning the model without it).", '',
      f"Machine: {record['machine']}.", '',
      'Regenerate: `python tools/benchmark.py continual`.', ''])


def write(record: dict, out: str) -> str:
  return results.write(record, out, table(record))
