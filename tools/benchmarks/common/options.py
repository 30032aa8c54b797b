"""Flags that several benchmarks read (each benchmark's own flags are in its module)."""
from absl import flags

DATA_DIR = flags.DEFINE_string('data_dir', None, 'TFDS data dir (default: TFDS\'s).')
SEEDS = flags.DEFINE_list('seeds', ['0', '1', '2', '3'],
                          'videomae_pretraining: fine-tuning seeds; default_job: training seeds.')
MODELS = flags.DEFINE_list('models', None, 'motion_models: which of its MOTION_PRESETS (default: '
                           'single_frame,i3d,slowfast,cnn_lstm); models, memory: which of '
                           'configs/speed_benchmark.py MODELS (default: all).')
STEPS = flags.DEFINE_integer('steps', None, 'motion_models: training steps of every model '
                             '(default: the tiny presets\' configs/common.py TINY_STEPS); '
                             'models: timed train steps per side (default 12).')
BATCH = flags.DEFINE_integer('batch', None, 'models: clips per step (default 4 tiny, 8 real); '
                             'memory: clips per device of the table (default 8).')
REMAT_ARMS = flags.DEFINE_list('remat_arms', ['none', 'full'], 'models --find_max_batch, memory: '
                               'config.model.remat values to search (models) or tabulate '
                               '(memory) at.')
