r"""SlowFast-R50 8x8 (or 4x16) on Kinetics-400 (Feichtenhofer et al. 2019; PySlowFast
SLOWFAST_8x8_R50, SLOWFAST_4x16_R50). Shared parts in configs/cnn/recipe.py.

  python -m vivit_jax.main --config configs/cnn/slowfast_r50_k400.py --workdir runs/slowfast_r50
  python -m vivit_jax.main --config configs/cnn/slowfast_r50_k400.py:4x16 --workdir runs/sf_4x16
  python -m vivit_jax.main --config configs/cnn/slowfast_r50_k400.py:tiny --workdir runs/sf_tiny

Model (vivit_jax/models/slowfast.py; facebookresearch/SlowFast video_model_builder.py SlowFast):
a Fast pathway on all 32 frames (width 64 / beta_inv 8 = 8, a 5x7x7 stem, 3x1x1 first convs in
every block) and a Slow pathway on every alpha = 4th frame (width 64, temporal kernel 1 in the
stem, res2, res3 and 3 in res4, res5), no temporal pooling; lateral 7x1x1 convs with temporal
stride 4 to 2x the fast width, BN, ReLU, concatenated into the slow pathway after the stem, res2,
res3 and res4; both pathways averaged, concatenated, dropout 0.5, one Dense. The numbers come from
configs/Kinetics/SLOWFAST_8x8_R50.yaml: ALPHA 4, BETA_INV 8, FUSION_CONV_CHANNEL_RATIO 2,
FUSION_KERNEL_SZ 7 (SLOWFAST_4x16_R50.yaml, the paper's Table 1 model, has ALPHA 8 and
FUSION_KERNEL_SZ 5). 34.57M parameters (PySlowFast/PyTorchVideo model zoo: 34.57M); conv and fc
multiply-adds per 32 x 256 x 256 test view 65.71 G (published 65.71 G; the paper's 65.7), 50.3 G
at 224 x 224.
Recipe (SLOWFAST_8x8_R50.yaml and PySlowFast defaults): 32 frames at stride 2, 224 crops,
horizontal flip, mean/std 0.45/0.225, SGD momentum 0.9 Nesterov, weight decay 1e-4 (not on BN or
biases), batch 64, lr 0.1, 34 warmup epochs, cosine over 196 epochs, no gradient clipping, no
label smoothing, zero-initialised last BN of each block, dropout 0.5; testing 10 clips x 3 crops,
softmax averaged. Published top-1 77.0% (PySlowFast), 76.94% (PyTorchVideo).
4x16 (SLOWFAST_4x16_R50.yaml): alpha 8, fusion_kernel 5, the same 32 x 2 clips and recipe (the
slow pathway sees 4 frames); 34,480,216 parameters (published 34.48M), 36.69 GFLOPs per view,
published top-1 75.34% (PyTorchVideo). PyTorchVideo's model-zoo 'model_state' of either
converts with vivit_jax.weights.pytorchvideo.variables(state_dict, models.build(config.model))
(logits equal within 1e-4: tests/weights/test_pytorchvideo.py).

Training crops follow a short-side scale jitter to 256-320, test crops come from frames at short
side 256. Not yet supported, so different here: test crops at 256 (here 224), warmup starting at lr 0.01 (here 0), precise BN statistics, fc init
N(0, 0.01) (here zero, like every head in this library); the slow frames are every 4th frame
from the first (PySlowFast: linspace(0, 31, 8), frames 0, 4, 8, 13, ...).
Tiny: depth 50 at base_width 8 on synthetic_motion clips of all 16 frames (stride 1) at 28 x 28,
alpha 4 as here (the slow pathway sees 4 frames), beta_inv 4 (a fast width of 2: at 1/8 the fast
stem would have one channel), 300 steps. Measured: ~8.5 clips/s (7.5 s per 64-clip step) on 2
busy CPU cores after a ~6 min compile, so the 300 steps take ~45 min; a 40-step smoke run through
main ended at chance (top-1 0.10, still in warmup). benchmarks/motion_models.md: test top-1 0.95
after 300 steps (0.10 on static clips), ~29 min on 2 busy CPU cores.
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
TINY_BETA_INV = 4
CLIPS = {'8x8': (4, 7), '4x16': (8, 5)}  # Clip -> (alpha, fusion_kernel).


def get_config(arg=None):
  """The preset; arg clip=8x8 (default) | 4x16, and tiny (CPU size)."""
  args = common.parse_arg(arg, __file__, clip=tuple(CLIPS))
  alpha, fusion_kernel = CLIPS[args.clip]
  config = recipe.default_config()
  config.model = recipe.model_config(
      'slowfast', num_classes=400, depth=50, base_width=64, alpha=alpha, beta_inv=8,
      fusion_kernel=fusion_kernel, fusion_conv_channel_ratio=2, nonlocal_blocks=((), (), (), ()),
      nonlocal_pool=(1, 2, 2),
      zero_init_residual=True, dropout_rate=0.5)
  recipe.kinetics_sgd(config, num_frames=32, stride=2, batch_size=BATCH_SIZE,
                      learning_rate=0.1, epochs=EPOCHS, warmup_epochs=WARMUP_EPOCHS,
                      nesterov=True)
  if args.tiny:
    return recipe.tiny(config, num_frames=16, stride=1, crop_size=28,
                           beta_inv=TINY_BETA_INV)
  return config
