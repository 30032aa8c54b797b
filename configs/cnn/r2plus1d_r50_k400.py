r"""R(2+1)D-R50 16x4 on Kinetics-400 as PyTorchVideo builds and trained it (create_r2plus1d;
PySlowFast configs/Kinetics/pytorchvideo/R2PLUS1D_16x4_R50.yaml). Shared parts in
configs/cnn/recipe.py.

  python -m vivit_jax.main --config configs/cnn/r2plus1d_r50_k400.py --workdir runs/r2plus1d_r50
  python -m vivit_jax.main --config configs/cnn/r2plus1d_r50_k400.py:tiny --workdir runs/r21d_tiny

Model (resnet3d with factorised=True, resnet.Bottleneck2Plus1D): a 1x7x7 stem conv (stride
1x2x2), BN, ReLU and no max pool; ResNet-50 bottlenecks whose 1x1x1 first conv is followed by a
(2+1)D conv: 3x1x1 temporal (stride 2 in the first block of res4 and res5), BN, ReLU, 1x3x3
spatial (stride 2 in the first block of every stage, res2 included), all at the block's inner
width; zero-initialised last BN in each block, dropout 0.5. 28,107,600 parameters as
PyTorchVideo's r2plus1d_r50 (published 28.11M). It differs from the paper's and configs/cnn/
r2plus1d_18_k400.py's R(2+1)D (spatial conv first, parameter-matched middle width, (2+1)D stem).
PyTorchVideo's model zoo: R2PLUS1D_16x4_R50 76.01 K400 top-1 (10 clips x 3 crops, 76.45 GFLOPs
per view); its 'model_state' converts with vivit_jax.weights.pytorchvideo.variables(state_dict,
models.build(config.model)). PyTorchVideo's hub model ends in a softmax; ours gives logits.
Recipe (R2PLUS1D_16x4_R50.yaml): 16 frames at stride 4, 224 crops, the rest as configs/cnn/
i3d_r50_k400.py (SGD Nesterov, lr 0.1 at batch 64, 34 warmup epochs, cosine over 196, weight
decay 1e-4), and the same differences.
Tiny: depth 50 at base_width 8 on synthetic_motion 8 x 28 x 28 clips, 300 steps.
"""
import os
import sys

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path[:0] = [] if _REPO in sys.path else [_REPO]  # configs.common without installing.
from configs import common  # noqa: E402  pylint: disable=wrong-import-position
from configs.cnn import recipe  # noqa: E402  pylint: disable=wrong-import-position


def get_config(arg=None):
  """The preset; arg 'tiny' gives its CPU-size version."""
  args = common.parse_arg(arg, __file__)
  config = recipe.default_config()
  config.model = recipe.model_config(
      'resnet3d', num_classes=400, depth=50, base_width=64, factorised=True,
      temporal_kernels=(1, 1, 1, 1), stem_temporal_kernel=1, stem_pool=False,
      spatial_strides=(2, 2, 2, 2), temporal_strides=(1, 1, 2, 2), zero_init_residual=True,
      dropout_rate=0.5)
  recipe.kinetics_sgd(config, num_frames=16, stride=4, batch_size=64, learning_rate=0.1,
                      epochs=196, warmup_epochs=34, nesterov=True)
  return recipe.tiny(config) if args.tiny else config
