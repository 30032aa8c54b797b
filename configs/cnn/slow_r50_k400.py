r"""Slow-R50 (8x8 or 4x16) and C2D-R50 8x8 on Kinetics-400 (Feichtenhofer et al. 2019; PySlowFast
SLOW_8x8_R50, SLOW_4x16_R50, C2D_8x8_R50). Shared parts in configs/cnn/recipe.py.

  python -m vivit_jax.main --config configs/cnn/slow_r50_k400.py --workdir runs/slow_r50
  python -m vivit_jax.main --config configs/cnn/slow_r50_k400.py:4x16 --workdir runs/slow_4x16
  python -m vivit_jax.main --config configs/cnn/slow_r50_k400.py:c2d --workdir runs/c2d_r50
  python -m vivit_jax.main --config configs/cnn/slow_r50_k400.py:tiny,c2d --workdir runs/c2d_tiny

Model (resnet3d, as PyTorchVideo's hub slow_r50 and c2d_r50): ResNet-50 bottlenecks after a
1x7x7 stem and a 1x3x3 max pool, zero-initialised last BN in each block, dropout 0.5.
  slow  3x1x1 first convs in res4 and res5 (1x1x1 in res2, res3), time never pooled: the Slow
        pathway of SlowFast; 32,454,096 parameters as slow_r50 (published 32.45M)
  c2d   1x1x1 first convs everywhere and a 2x1x1 temporal max pool after res2 (pool1);
        24,327,632 parameters as c2d_r50 (published 24.33M)
PyTorchVideo's model zoo (K400 top-1, 10 clips x 3 crops; GFLOPs per view): SLOW_8x8_R50 74.58
(54.52), SLOW_4x16_R50 72.40 (27.55), C2D_8x8_R50 71.46 (25.89). Their 'model_state' converts
with vivit_jax.weights.pytorchvideo.variables(state_dict, models.build(config.model)) (logits
equal to PyTorchVideo's within 1e-4: tests/weights/test_pytorchvideo.py).
Recipe (PySlowFast configs/Kinetics/SLOW_8x8_R50.yaml, pytorchvideo/C2D_8x8_R50.yaml): 8 frames
at stride 8 (4x16: 4 at stride 16), 224 crops, the rest as configs/cnn/i3d_r50_k400.py (SGD
Nesterov, lr 0.1 at batch 64, 34 warmup epochs, cosine over 196, weight decay 1e-4), and the same
differences. PyTorchVideo's head average-pools fixed 8x7x7 (4x7x7) windows before its global
average: the same at 224 crops, not at larger test crops (here a global average).
Tiny: depth 50 at base_width 8 on synthetic_motion 8 x 28 x 28 clips, 300 steps.
"""
import os
import sys

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path[:0] = [] if _REPO in sys.path else [_REPO]  # configs.common without installing.
from configs import common  # noqa: E402  pylint: disable=wrong-import-position
from configs.cnn import recipe  # noqa: E402  pylint: disable=wrong-import-position

# Variant -> (first-conv temporal kernels of res2..res5, temporal_pool after res2).
VARIANTS = {'slow': ((1, 1, 3, 3), 1), 'c2d': ((1, 1, 1, 1), 2)}
CLIPS = {'8x8': (8, 8), '4x16': (4, 16)}  # Clip -> (num_frames, stride).


def get_config(arg=None):
  """The preset; arg variant=slow (default) | c2d, clip=8x8 (default) | 4x16, and tiny."""
  args = common.parse_arg(arg, __file__, variant=tuple(VARIANTS), clip=tuple(CLIPS))
  temporal_kernels, temporal_pool = VARIANTS[args.variant]
  num_frames, stride = CLIPS[args.clip]
  config = recipe.default_config()
  config.model = recipe.model_config(
      'resnet3d', num_classes=400, depth=50, base_width=64, temporal_kernels=temporal_kernels,
      stem_temporal_kernel=1, temporal_pool=temporal_pool, zero_init_residual=True,
      dropout_rate=0.5)
  recipe.kinetics_sgd(config, num_frames=num_frames, stride=stride, batch_size=64,
                      learning_rate=0.1, epochs=196, warmup_epochs=34, nesterov=True)
  return recipe.tiny(config) if args.tiny else config
