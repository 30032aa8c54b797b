r"""Early fusion on Sports-1M (Karpathy et al. 2014): 10 consecutive frames stacked into 30
channels, so the first convolution sees time and the rest is a 2D ResNet-18. The recipe and what
differs are in configs/cnn/single_frame.py (`karpathy_config`).

  python -m vivit_jax.main --config configs/cnn/early_fusion.py --workdir runs/early_fusion \
      --config.dataset.data_dir=DIR_WITH_YOUR_TFDS_sports1m
  python -m vivit_jax.main --config configs/cnn/early_fusion.py:tiny --workdir runs/early_tiny

Model (vivit_jax/models/fusion.py EarlyFusion): clips (B, 10, H, W, 3) -> (B, H, W, 30); the
ResNet's 7 x 7 stem kernel has 30 input channels (the paper's first layer: 11 x 11 x 3 x 10
filters over T = 10 frames, about a third of a second). Published video hit@1 on Sports-1M: 57.7%
(single frame 59.3%).
Tiny: 8 frames at stride 2 stacked into 24 channels, lr 0.1 (see configs/cnn/single_frame.py);
test top-1 0.98 in benchmarks/motion_models.md, ~1.5 min on 2 busy CPU cores.
"""
import os
import sys

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path[:0] = [] if _REPO in sys.path else [_REPO]  # configs.common without installing.
from configs import common  # noqa: E402  pylint: disable=wrong-import-position
from configs.cnn import single_frame  # noqa: E402  pylint: disable=wrong-import-position

NUM_FRAMES = 10


def get_config(arg=None):
  """The preset (the paper's early fusion); arg 'tiny' gives its CPU-size version."""
  return single_frame.karpathy_config('early_fusion', tiny=common.parse_arg(arg, __file__).tiny,
                                      num_frames=NUM_FRAMES)
