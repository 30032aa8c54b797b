r"""Two-stream network on UCF-101 (Simonyan & Zisserman 2014, "Two-Stream Convolutional Networks
for Action Recognition in Videos"), with ResNet-18s as both streams. Shared parts in
configs/cnn/recipe.py.

  python -m vivit_jax.main --config configs/cnn/two_stream.py --workdir runs/two_stream \
      --config.dataset.data_dir=DIR_WITH_YOUR_TFDS_ucf101
  python -m vivit_jax.main --config configs/cnn/two_stream.py:tiny --workdir runs/two_stream_tiny

Model (vivit_jax/models/two_stream.py): clips of 11 consecutive frames; the appearance stream sees
the middle frame, the motion stream the stacked optical flow of the 10 frame pairs (L = 10 in the
paper: 20 input channels); class probabilities averaged (fusion_weight 0.5, the paper's fusion by
averaging). The flow comes from the input pipeline (config.dataset.flow=True).
Recipe (paper): SGD momentum 0.9, batches of 256, lr 1e-2 (to 1e-3 after 50K and 1e-4 after 70K
iterations, stopped at 80K, from scratch), 224 x 224 random crops, horizontal flip, dropout 0.9;
testing 25 frames (flow stacks) per video, each in 10 crops / flips, scores averaged. Published
mean accuracy over the three UCF-101 splits: spatial stream 73.0%, temporal 83.7%, two-stream by
averaging 86.9% (by SVM 88.0%).

Different here: ResNet-18s (BatchNorm, global average pooling) instead of the paper's CNN-M-2048;
no ImageNet pre-training of the appearance stream (the paper fine-tunes it; both streams start from
scratch here) and the two streams are trained jointly through the fused probabilities instead of
separately; Farneback flow clipped to +-20 px and scaled to [-1, 1] instead of Brox et al.'s flow,
without the paper's mean-flow subtraction and without its multi-task training on HMDB-51; cosine
decay over the 80K steps instead of the step schedule; weight decay 5e-4 (the paper states none;
AlexNet's, whose training it adapts); 25 clips x 3 crops at test; no RGB jittering.
TFDS's ucf101 builder downloads UCF-101 (not possible here); build it into
config.dataset.data_dir first (`tfds build ucf101`).
Tiny: base_width 8, synthetic_motion 8 x 28 x 28 clips at stride 2 with flow (7 fields, 14
motion channels), 300 steps at the paper's lr 1e-2: measured test top-1 0.84, top-5 1.0
(1280 clips; train top-1 0.38 at step 150), ~4 min on 2 busy CPU cores (~300 clips/s).
"""
import os
import sys

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path[:0] = [] if _REPO in sys.path else [_REPO]  # configs.common without installing.
from configs import common  # noqa: E402  pylint: disable=wrong-import-position
from configs.cnn import recipe  # noqa: E402  pylint: disable=wrong-import-position

BATCH_SIZE = 256
NUM_STEPS = 80_000
NUM_FRAMES = 11  # 10 flow fields: the paper's L = 10.


def get_config(arg=None):
  """The preset (the paper's two-stream model); arg 'tiny' gives its CPU-size version."""
  args = common.parse_arg(arg, __file__)
  config = recipe.default_config()
  config.dataset.update(name='ucf101', num_frames=NUM_FRAMES, stride=1, crop_size=224, flip=True,
                        eval_clips=25, eval_crops=3, flow=True)
  config.model = recipe.model_config('two_stream', num_classes=101, depth=18, base_width=64,
                                     zero_init_residual=True, dropout_rate=0.9,
                                     fusion_weight=0.5)
  common.set_sgd(config, learning_rate=1e-2, epochs=1, warmup_epochs=0,
                 steps_per_epoch=NUM_STEPS, momentum=0.9, nesterov=False, weight_decay=5e-4,
                 grad_clip_norm=common.NO_CLIPPING)
  config.train.update(batch_size=BATCH_SIZE, eval_batch_size=BATCH_SIZE, label_smoothing=0.0,
                      log_every_steps=100, eval_every_steps=10_000)
  config.checkpoint.every_steps = 5_000
  if args.tiny:
    config = recipe.tiny(config)
    config.dataset.flow = True  # tiny() takes default.py's dataset section.
  return config
