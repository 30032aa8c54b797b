r"""I3D-style inflated ResNet-50, 8x8, on Kinetics-400 (PySlowFast I3D_8x8_R50; with the argument
'nonlocal', I3D_NLN_8x8_R50 with non-local blocks). Shared parts in configs/cnn/recipe.py.

  python -m vivit_jax.main --config configs/cnn/i3d_r50_k400.py --workdir runs/i3d_r50_k400
  python -m vivit_jax.main --config configs/cnn/i3d_r50_k400.py:nonlocal --workdir runs/i3d_nln
  python -m vivit_jax.main --config configs/cnn/i3d_r50_k400.py:tiny --workdir runs/i3d_tiny

Model (facebookresearch/SlowFast, video_model_builder.py ARCH 'i3d'): a 5x7x7 stem, max pool 1x3x3,
bottlenecks whose first conv is 3x1x1 in every block of res2, in blocks 0, 2 of res3, 0, 2, 4 of
res4 and block 1 of res5 (else 1x1x1), a 2x1x1 temporal max pool after res2, zero-initialised
last BN in each block, dropout 0.5. 28.04M parameters (published 28.0M); 'nonlocal' adds
embedded-Gaussian blocks after res3 blocks 1, 3 and res4 blocks 1, 3, 5 (35.4M). Conv and fc
multiply-adds per 8 x 256 x 256 test view: 37.1 G (published 37.5 G), 28.4 G at 224 x 224.
Recipe (configs/Kinetics/I3D_8x8_R50.yaml and PySlowFast defaults): 8 frames at stride 8, 224 crops,
horizontal flip, mean/std 0.45/0.225, SGD momentum 0.9 Nesterov, weight decay 1e-4 (not on BN or
biases), batch 64, lr 0.1, 34 warmup epochs, cosine over 196 epochs, no gradient clipping, no
label smoothing; testing 10 clips x 3 crops, softmax averaged. Published top-1 73.5% (I3D),
74.0% (I3D NLN).

Training crops follow a short-side scale jitter to 256-320, test crops come from frames at short
side 256. Not yet supported, so different here: test crops at 256 (here 224), warmup starting at lr 0.01 (here 0), precise BN statistics, fc init
N(0, 0.01) (here zero, like every head in this library).
Tiny: depth 50 at base_width 8 on synthetic_motion 8 x 28 x 28 clips, 300 steps; expect test
top-1 0.98, top-5 1.0 (1280 clips; train top-1 0.34 at step 150), ~10 min on 2 busy CPU cores
(30-55 clips/s).
"""
import os
import sys

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path[:0] = [] if _REPO in sys.path else [_REPO]  # configs.common without installing.
from configs import common  # noqa: E402  pylint: disable=wrong-import-position
from configs.cnn import recipe  # noqa: E402  pylint: disable=wrong-import-position

BATCH_SIZE = 64
EPOCHS = 196
WARMUP_EPOCHS = 34
# PySlowFast _TEMPORAL_KERNEL_BASIS['i3d'] for res2..res5 (cycled over each stage's blocks).
TEMPORAL_KERNELS = ((3,), (3, 1), (3, 1), (1, 3))
NONLOCAL_BLOCKS = ((), (1, 3), (1, 3, 5), ())  # I3D_NLN_8x8_R50's NONLOCAL.LOCATION.


def get_config(arg=None):
  """The preset; arg variant=i3d (default) or nonlocal (I3D NLN), and tiny (CPU size)."""
  args = common.parse_arg(arg, __file__, variant=('i3d', 'nonlocal'))
  config = recipe.default_config()
  config.model = recipe.model_config(
      'resnet3d', num_classes=400, depth=50, base_width=64, temporal_kernels=TEMPORAL_KERNELS,
      stem_temporal_kernel=5, temporal_pool=2,
      nonlocal_blocks=NONLOCAL_BLOCKS if args.variant == 'nonlocal' else ((), (), (), ()),
      nonlocal_pool=(1, 2, 2), zero_init_residual=True, dropout_rate=0.5)
  recipe.kinetics_sgd(config, num_frames=8, stride=8, batch_size=BATCH_SIZE,
                      learning_rate=0.1, epochs=EPOCHS, warmup_epochs=WARMUP_EPOCHS,
                      nesterov=True)
  return recipe.tiny(config) if args.tiny else config
