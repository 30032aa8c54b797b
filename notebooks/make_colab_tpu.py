"""Writes notebooks/colab_tpu.ipynb (outputs empty): `python notebooks/make_colab_tpu.py`.

Edit the cells here, not in the .ipynb; tests/test_notebook.py checks the two agree and runs the
notebook top to bottom on CPU with its TINY parameters.
"""
import os

import nbformat
from nbformat import v4

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'colab_tpu.ipynb')

CELLS = [
    ('md', 'title', """\
# vivit_jax on a Colab TPU

Train a tiny ViViT on the built-in `synthetic_motion` dataset, evaluate it (multi-view, confusion
matrix, per-class accuracy), pre-train a tiny VideoMAE and look at its reconstructions, then
classify one video file. Runtime > Change runtime type > **TPU** (a GPU or the CPU runtime work
too: the same code runs on whatever devices JAX finds; on a 2-core CPU the classifier alone
takes minutes: benchmarks/default_job.md)."""),
    ('code', 'parameters', """\
# Parameters (papermill-style cell tagged 'parameters'; tests/test_notebook.py overrides them).
RUN_INSTALL = True  # Clone and pip-install vivit_jax and JAX for TPU (False: already installed).
REPO_URL = ''  # This repository's clone URL (`git remote get-url origin` in a checkout).
REPO = 'vivit_jax'  # Its checkout (cloned here if missing): configs/ are read from it.
DATA_DIR = ''  # TFDS data dir: '' = ~/tensorflow_datasets (or $TFDS_DATA_DIR); gs://BUCKET/tfds.
WORKDIR = 'runs'  # Runs go to WORKDIR/NAME; a gs://BUCKET/runs path outlives the Colab session.
TINY = False  # Shrink every run to seconds on a CPU (the notebook's test)."""),
    ('md', 'install-md', """\
## Install

Clones the repository and installs it with JAX for TPU. On a GPU runtime install `jax[cuda12]`
instead; on the CPU runtime plain `jax`. A dataset or workdir in a bucket needs Colab's
credentials first: `from google.colab import auth; auth.authenticate_user()`."""),
    ('code', 'install', """\
import os
import sys

if RUN_INSTALL:
  if not os.path.isdir(REPO):
    if not REPO_URL:
      raise ValueError('Set REPO_URL in the parameters cell to the clone URL of vivit_jax '
                       '(`git remote get-url origin` in a checkout prints it).')
    !git clone -q {REPO_URL} {REPO}
  %pip install -q -e {REPO} "jax[tpu]"
sys.path.insert(0, os.path.abspath(REPO))  # The fresh install, without restarting the kernel."""),
    ('code', 'devices', """\
import jax

print(jax.devices())
print(f'{jax.device_count()} {jax.default_backend()} device(s), {jax.process_count()} process(es)')"""),
    ('md', 'dataset-md', """\
## The dataset

`synthetic_motion` is built on first use (~10 s): 16-frame 32x32 clips of an object moving over a
noisy background, 10 classes given by the motion. Alternatives (README, "Your own videos and the
standard datasets"):

* your own videos: upload them as `/content/videos/<split>/<class>/<video>` and run
  `!python {REPO}/tools/build_dataset.py --src /content/videos --name my_videos --fps 10
  --short_side 128 --data_dir {DATA_DIR}`, then load `configs/video_folder.py` (crops sized for
  that `--short_side`) instead of `configs/default.py` below and set `config.dataset.name` and
  `config.model.num_classes`;
* a dataset already built into a bucket: `DATA_DIR = 'gs://BUCKET/tfds'` in the parameters."""),
    ('code', 'dataset', """\
import runpy

from vivit_jax import console, data


def load_config(path, arg=None):
  \"\"\"get_config(arg) of a config file of the checkout, e.g. 'configs/default.py'.\"\"\"
  return runpy.run_path(os.path.join(REPO, path))['get_config'](arg)


console.show_progress()  # Training progress lines in the cell outputs.
config = load_config('configs/default.py')
config.dataset.data_dir = DATA_DIR
# Your own videos: config = load_config('configs/video_folder.py'), then
# config.dataset.name = 'my_videos'; config.model.num_classes = K
info = data.dataset_info(config.dataset)
print(f"{config.dataset.name}: {info['num_classes']} classes, {info['num_examples']}")"""),
    ('md', 'train-md', """\
## Train

The default preset: a 4-layer ViViT (Model 1), 600 steps of 64 clips (bfloat16 on a TPU). Rerun
the cell to resume from the latest checkpoint in the workdir."""),
    ('code', 'train', """\
from vivit_jax.train import loop

config.model.dtype = 'bfloat16' if jax.default_backend() == 'tpu' else 'float32'
if TINY:
  config.model.update(hidden_size=32, num_layers=1, num_heads=4, mlp_dim=64,
                      patch_size=(2, 4, 4))
  config.dataset.update(num_frames=4, crop_size=16, eval_split='test[:64]')
  config.train.update(batch_size=16, eval_batch_size=32, num_steps=8, log_every_steps=4)
  config.optimizer.warmup_steps = 2
workdir = f'{WORKDIR}/default'
results = loop.run(config, workdir)"""),
    ('md', 'evaluate-md', """\
## Evaluate

Multi-view testing: the softmax averaged over 2 clips x 3 crops of each test video; writes
`WORKDIR/default/eval/{results.json,per_class.csv,confusion_matrix.png}`."""),
    ('code', 'evaluate', """\
import csv

import tensorflow as tf
from IPython.display import Image, display

from vivit_jax import evaluate

config.dataset.update(eval_clips=2, eval_crops=3)
out = f'{workdir}/eval'
record = evaluate.evaluate(config, workdir, out=out)
print(evaluate.summary(record, out))
with tf.io.gfile.GFile(f'{out}/confusion_matrix.png', 'rb') as f:
  display(Image(data=f.read(), width=480))
with tf.io.gfile.GFile(f'{out}/per_class.csv') as f:
  rows = list(csv.DictReader(f))
print(f"{'class':<16} {'videos':>6} {'top-1':>7} {'top-5':>7}")
for row in rows:
  print(f"{row['class']:<16} {row['videos']:>6} {row['top1']:>7} {row['top5']:>7}")"""),
    ('md', 'mae-md', """\
## VideoMAE pre-training

The tiny VideoMAE preset (`configs/videomae/pretrain.py:tiny`: 90% tube masking, norm-pix
targets) on the same clips. Each evaluation writes a reconstruction grid: per clip, the frames,
the masked input and the reconstruction."""),
    ('code', 'mae', """\
mae_config = load_config('configs/videomae/pretrain.py', 'tiny')
mae_config.dataset.data_dir = config.dataset.data_dir
if TINY:
  mae_config.model.update(patch_size=4, hidden_size=32, num_layers=1, mlp_dim=64,
                          decoder_hidden_size=16, decoder_num_layers=1, decoder_mlp_dim=32)
  mae_config.dataset.update(num_frames=4, crop_size=16, eval_split='test[:16]')
  mae_config.train.update(batch_size=16, eval_batch_size=16, num_steps=4, log_every_steps=2)
  mae_config.optimizer.warmup_steps = 1
mae_workdir = f'{WORKDIR}/videomae_tiny'
loop.run(mae_config, mae_workdir)
grid = sorted(tf.io.gfile.glob(f'{mae_workdir}/reconstructions/step_*.png'))[-1]
print(grid)
with tf.io.gfile.GFile(grid, 'rb') as f:
  display(Image(data=f.read(), width=640))"""),
    ('md', 'predict-md', """\
## Classify a video file

Any file FFmpeg reads works (upload one and set `video`); here a test clip written as an mp4."""),
    ('code', 'predict', """\
import tempfile

import av
import tensorflow_datasets as tfds

from vivit_jax import predict

example = next(iter(tfds.as_numpy(
    data.get_builder(config.dataset).as_dataset(split='test[:1]'))))
video = os.path.join(tempfile.mkdtemp(), 'clip.mp4')
with av.open(video, 'w') as container:
  stream = container.add_stream('libx264', rate=8)
  stream.height, stream.width = example['video'].shape[1:3]
  stream.pix_fmt = 'yuv420p'
  stream.options = {'crf': '0'}  # Lossless.
  for frame in example['video']:
    container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')))
  container.mux(stream.encode())
print(f"{video}: true class {info['class_names'][example['label']]}")
for name, probability in predict.predict(config, workdir, video):
  print(f'  {probability:.4f}  {name}')"""),
]


def notebook() -> nbformat.NotebookNode:
  """The notebook of CELLS, outputs empty, with stable cell ids."""
  cells = []
  for kind, cell_id, source in CELLS:
    cell = v4.new_markdown_cell(source) if kind == 'md' else v4.new_code_cell(source)
    cell.id = cell_id
    if cell_id == 'parameters':
      cell.metadata['tags'] = ['parameters']
    cells.append(cell)
  nb = v4.new_notebook(cells=cells)
  nb.metadata.update(
      kernelspec={'name': 'python3', 'display_name': 'Python 3', 'language': 'python'},
      language_info={'name': 'python'}, accelerator='TPU',
      colab={'provenance': [], 'name': 'colab_tpu.ipynb'})
  return nb


if __name__ == '__main__':
  nbformat.write(notebook(), PATH)
  print(f'Wrote {PATH}')
