r"""Single-frame baseline on Sports-1M (Karpathy et al. 2014, "Large-scale Video Classification
with Convolutional Neural Networks"), with a ResNet-18 as the frame ConvNet. This file also holds
the Sports-1M recipe of the paper's fusion models (`karpathy_config`), which
configs/cnn/late_fusion.py and configs/cnn/early_fusion.py share; other shared parts in
configs/cnn/recipe.py.

  python -m vivit_jax.main --config configs/cnn/single_frame.py --workdir runs/single_frame \
      --config.dataset.data_dir=DIR_WITH_YOUR_TFDS_sports1m
  python -m vivit_jax.main --config configs/cnn/single_frame.py:tiny --workdir runs/single_tiny

Model (vivit_jax/models/fusion.py SingleFrame): the 2D ResNet classifies every frame of a clip;
the clip's logits are log(mean over frames of softmax), so training and the multi-view evaluator
see the frame-averaged class probability. Here a clip is one frame, as in the paper (which trains
on single frames and averages the predictions of 20 clips per video at test time).
Recipe (paper, shared by the three presets): Sports-1M (487 classes), frames cropped to 170 x 170
from 200 x 200, horizontal flip, SGD (Downpour) with momentum 0.9, weight decay 5e-4, lr 1e-3,
mini-batches of 32; video predictions average 20 clips (each seen in 4 crops / flips). Published
video hit@1 on Sports-1M: single-frame 59.3%, early fusion 57.7%, late fusion 59.3% (slow fusion
60.9%).

Different here: a ResNet-18 (BatchNorm, global average pooling, dropout 0.5 before the head)
replaces the paper's AlexNet-style ConvNet with local response normalisation and its 4096-wide fc
layers; no multiresolution (fovea + context) streams; the paper trains about a month without a
stated number of steps: 1.9M steps here with cosine decay (C3D's length on the same dataset,
configs/cnn/c3d_sports1m.py); test views are 20 clips x 3 crops (the paper: 4 crops and flips);
crops come from the stored frames (store your videos at 200 x 200); pixels use mean/std 0.5.
TFDS has no Sports-1M: build a TFDS dataset named 'sports1m' (features 'video' (T, H, W, 3) uint8
and 'label', 487 classes) into config.dataset.data_dir.
Tiny (all three presets): base_width 8, 10 classes, synthetic_motion 8 x 28 x 28 clips at stride 2
(all 8 frames averaged here), 300 steps at peak lr TINY_LEARNING_RATE = 0.1 (the tiny I3D's): at
the paper's 1e-3 all three stayed at chance in 300 steps. benchmarks/motion_models.md trains them
with that optimizer: single_frame test top-1 0.10 = chance (frames carry no motion), late fusion
0.99, early fusion 0.98; ~2-4 min each on 2 busy CPU cores.
"""
import os
import sys

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path[:0] = [] if _REPO in sys.path else [_REPO]  # configs.common without installing.
from configs import common  # noqa: E402  pylint: disable=wrong-import-position
from configs.cnn import recipe  # noqa: E402  pylint: disable=wrong-import-position

BATCH_SIZE = 32
NUM_STEPS = 1_900_000
CROP_SIZE = 170
RESNET = dict(depth=18, base_width=64, zero_init_residual=True, dropout_rate=0.5)
TINY_LEARNING_RATE = 0.1


def karpathy_config(name: str, *, tiny: bool, num_frames: int, **model):
  """Karpathy et al.'s Sports-1M recipe for model `name` (ResNet-18 fields plus `model`) on
  clips of `num_frames` consecutive frames; at CPU size if `tiny`."""
  config = recipe.default_config()
  config.dataset.update(name='sports1m', num_frames=num_frames, stride=1, crop_size=CROP_SIZE,
                        flip=True, eval_clips=20, eval_crops=3)
  config.model = recipe.model_config(name, num_classes=487, **RESNET, **model)
  common.set_sgd(config, learning_rate=1e-3, epochs=1, warmup_epochs=0,
                 steps_per_epoch=NUM_STEPS, momentum=0.9, nesterov=False, weight_decay=5e-4,
                 grad_clip_norm=common.NO_CLIPPING)
  config.train.update(batch_size=BATCH_SIZE, eval_batch_size=BATCH_SIZE, label_smoothing=0.0,
                      log_every_steps=100, eval_every_steps=100_000)
  config.checkpoint.every_steps = 10_000
  if tiny:
    config = recipe.tiny(config)
    config.optimizer.learning_rate = TINY_LEARNING_RATE
  return config


def get_config(arg=None):
  """The preset (the paper's single-frame model); arg 'tiny' gives its CPU-size version."""
  return karpathy_config('single_frame', tiny=common.parse_arg(arg, __file__).tiny, num_frames=1)
