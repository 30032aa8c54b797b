r"""X3D-XS/S/M/L on Kinetics-400 (Feichtenhofer, CVPR 2020; PySlowFast configs/Kinetics/X3D_*.yaml),
the size chosen by argument (default M). Shared parts in configs/cnn/recipe.py.

  python -m vivit_jax.main --config configs/cnn/x3d_k400.py:M --workdir runs/x3d_m
  python -m vivit_jax.main --config configs/cnn/x3d_k400.py:L --workdir runs/x3d_l
  python -m vivit_jax.main --config configs/cnn/x3d_k400.py:tiny --workdir runs/x3d_tiny
  python -m vivit_jax.main --config configs/cnn/x3d_k400.py:tiny,S --workdir runs/x3d_s_tiny

Model (vivit_jax/models/x3d.py, as PyTorchVideo's create_x3d): stem width 24, four stages of
inverted bottlenecks (depthwise 3x3x3, squeeze-excitation on every other block, swish) of widths
24, 48, 96, 192 (inner 54 ... 432), 3, 5, 11, 7 blocks (depth factor 2.2; X3D-L 5.0: 5, 10, 25,
15), a 1x1x1 conv to 432, global average pool, a 2048-wide fc with ReLU, dropout 0.5, the
classifier; zero-initialised last BN of each block. The sizes differ in depth and clip only:

  size  frames x stride crop  scale: train  test  batch  lr    epochs  published: params GMACs top-1
  XS    4 x 12          160   182-228       182   128    0.1   300                3.8M   0.6   68.6%
  S     13 x 6          160   182-228       182   128    0.1   300                3.8M   2.0   72.9%
  M     16 x 5          224   256-320       256   128    0.1   300                3.8M   6.2   74.6%
  L     16 x 5          312   356-446       356   64     0.05  256                6.1M   24.8  76.8%

Published: the X3D paper; its 'GFLOPs' are multiply-adds (GMACs) per view, M's and L's at their
256 and 356 test crops (at the training crops its Table 3 gives 0.60, 1.96, 4.73, 18.37).
PySlowFast's model zoo (10 clips x 3 crops): XS 69.5%, S 73.5%, M 76.2%, L 77.5%.
Measured here (tests/models/test_x3d.py): 3,794,274 parameters for XS/S/M and 6,153,384 for L,
equal to PyTorchVideo's create_x3d; conv and fc multiply-adds per view 0.605 G (XS), 1.96 G (S),
4.73 G (M; 6.18 G at 256^2), 18.37 G (L; 23.9 G at 356^2) at the training crops, Table 3 to the
digit. With a PyTorchVideo state dict converted by vivit_jax/weights/pytorchvideo/x3d.py, the logits
equal PyTorchVideo's X3D to 5e-7 (float32, a small random-weight X3D).
Recipe (X3D_*.yaml and PySlowFast defaults): SGD momentum 0.9 Nesterov, weight decay 5e-5 (not on
BN or biases), cosine over the epochs above after 35 warmup epochs, dropout 0.5, horizontal flip,
mean/std 0.45/0.225, no gradient clipping, no label smoothing; testing 10 clips x 3 crops,
softmax averaged.

Not yet supported, so different here: test crops at the test scale (here the training crop),
warmup starting at lr 0.01 (here 0), precise BN statistics, fc init N(0, 0.01) (here zero, like
every head in this library).
Tiny: the size's depths with base_width 8 (widths 16, 32, 64, 128, inner 36 ... 288) and a
128-wide fc, on synthetic_motion 8 x 28 x 28 clips, 300 steps, bfloat16 compute as the preset.
"""
import os
import sys

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path[:0] = [] if _REPO in sys.path else [_REPO]  # configs.common without installing.
from configs import common  # noqa: E402  pylint: disable=wrong-import-position
from configs.cnn import recipe  # noqa: E402  pylint: disable=wrong-import-position

# Size -> (depth_factor, num_frames, stride, crop_size, train short side range, test short side,
# batch size, learning rate, epochs): the table above.
SIZES = {
    'M': (2.2, 16, 5, 224, (256, 320), 256, 128, 0.1, 300),
    'XS': (2.2, 4, 12, 160, (182, 228), 182, 128, 0.1, 300),
    'S': (2.2, 13, 6, 160, (182, 228), 182, 128, 0.1, 300),
    'L': (5.0, 16, 5, 312, (356, 446), 356, 64, 0.05, 256),
}
WARMUP_EPOCHS = 35
WEIGHT_DECAY = 5e-5
TINY_HEAD_WIDTH = 128


def get_config(arg=None):
  """The preset; arg size=M (default) | XS | S | L, and tiny (CPU size)."""
  args = common.parse_arg(arg, __file__, size=tuple(SIZES))
  depth_factor, frames, stride, crop, scales, test_scale, batch, lr, epochs = SIZES[args.size]
  config = recipe.default_config()
  config.model = recipe.model_config(
      'x3d', num_classes=400, base_width=12, width_factor=2.0, depth_factor=depth_factor,
      bottleneck_factor=2.25, head_width=2048, se_ratio=0.0625, zero_init_residual=True,
      dropout_rate=0.5)
  recipe.kinetics_sgd(config, num_frames=frames, stride=stride, batch_size=batch,
                      learning_rate=lr, epochs=epochs, warmup_epochs=WARMUP_EPOCHS,
                      nesterov=True, crop_size=crop, short_side_range=scales,
                      eval_short_side=test_scale)
  config.optimizer.weight_decay = WEIGHT_DECAY
  return recipe.tiny(config, head_width=TINY_HEAD_WIDTH) if args.tiny else config
