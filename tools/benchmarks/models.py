"""How fast is our train step? For each preset of configs/speed_benchmark.py (ViViT Models
1-4, VideoMAE pre-training and fine-tuning, TimeSformer, I3D, SlowFast, C3D) on one device:
params, GFLOPs per clip (XLA cost analysis), compile time, median train-step time, clips/s, MFU
against the device's matmul rate measured in the same run, memory; and, where transformers has the
same model, the Hugging Face PyTorch model of the same configuration timed in rounds interleaved
with ours, and our/their clips/s. --size tiny (CPU: reduced sizes, float32) or real (GPU: the
presets, bfloat16, cudnn attention). --profile_steps traces our steps and adds where the device
time goes (by op kind, phase, layer; the top ops). Models with an HF peer are also compared phase
by phase: forward, forward + backward (no optimizer on either side) and the full train step
(--nophases: the step only). --find_max_batch adds the largest batch that fits per device for
each --remat_arms value. Writes benchmarks/<device>-<date>.json and regenerates
benchmarks/README.md after every model, so a run cut short keeps what it measured.
tools/gpu_benchmark.sh is the GPU run. The parts: tools/benchmarks/speed/.

  python tools/benchmark.py models [--models vivit1,...] [--size tiny|real] [--steps N] [--batch B]
      [--profile_steps N] [--find_max_batch [--max_batch_models vivit1] [--remat_arms none,full]
      [--max_batch_tolerance 0.1]] [--tag NAME] [--nophases] [--time_budget_s S]
"""
from absl import app, flags

from tools.benchmarks.common import options
from configs import speed_benchmark

_SIZE = flags.DEFINE_enum('size', 'tiny', ['tiny', 'real'], 'models: reduced CPU sizes or the '
                          'presets\' real sizes (GPU).')
_FIND_MAX_BATCH = flags.DEFINE_bool('find_max_batch', False, 'models: also search the largest '
                                    'batch that fits on one device (GPU runs) for each model of '
                                    '--max_batch_models.')
_MAX_BATCH_MODELS = flags.DEFINE_list('max_batch_models', None, 'models --find_max_batch: which '
                                      'models to search (default: those of --models).')
_MAX_BATCH_TOLERANCE = flags.DEFINE_float(
    'max_batch_tolerance', 0.0, 'models --find_max_batch: stop the search once the batch that '
    'fails is within this fraction of the one that runs (0: exact). On a GPU the search starts '
    'at the batch the compiled memory predicts.')
_TAG = flags.DEFINE_string('tag', '', 'models: a name for this part of the day\'s runs: writes '
                           'benchmarks/<device>-<date>-<tag>.json.')
_PROFILE_STEPS = flags.DEFINE_integer('profile_steps', 0, 'models: also trace this many of our '
                                      'train steps and report where the device time goes.')
_PHASES = flags.DEFINE_bool('phases', True, 'models: also time forward and forward + backward '
                            'of ours and the HF peer (models with one; two more compiles each).')
_TIME_BUDGET_S = flags.DEFINE_float('time_budget_s', None, 'models: start no model (or batch '
                                    'search) after this many seconds; the rest get skipped rows.')


def run(workdir: str, out: str) -> dict:
  """Times our train step and its HF peer per model (speed.harness); a run where a model failed
  writes its record, then exits with the errors."""
  from tools.benchmarks.speed import harness  # pylint: disable=import-outside-toplevel
  del workdir
  try:
    names = speed_benchmark.check_names(options.MODELS.value or list(speed_benchmark.MODELS))
  except ValueError as error:
    raise app.UsageError(str(error)) from error
  max_batch_models = (_MAX_BATCH_MODELS.value or names) if _FIND_MAX_BATCH.value else []
  record = harness.run(names, _SIZE.value, options.STEPS.value or 12, options.BATCH.value,
                       profile_steps=_PROFILE_STEPS.value, max_batch_models=max_batch_models,
                       remat_arms=options.REMAT_ARMS.value,
                       max_batch_tolerance=_MAX_BATCH_TOLERANCE.value,
                       on_update=lambda r: write(r, out), tag=_TAG.value,
                       phases=_PHASES.value, time_budget_s=_TIME_BUDGET_S.value)
  failed = [r for r in record['rows'] if 'error' in r]
  if failed:  # The record (with the errors) is written; the run still fails.
    print(write(record, out))
    raise SystemExit('Failed: ' + '; '.join(f"{r['model']}: {r['error'][:300]}"
                                            for r in failed))
  return record


def write(record: dict, out: str) -> str:
  """Writes OUT/<device>-<date>[-<tag>].json and regenerates OUT/README.md (speed.report)."""
  from tools.benchmarks.speed import report  # pylint: disable=import-outside-toplevel
  return report.write(record, out)
