r"""Late fusion on Sports-1M (Karpathy et al. 2014): two frames 15 apart through one shared
ResNet-18, their pooled features concatenated into a 4096-wide fully connected layer; with the
argument 'pool', the frames' feature maps average-pooled over space and time into the linear head
instead. The recipe and what differs are in configs/cnn/single_frame.py (`karpathy_config`).

  python -m vivit_jax.main --config configs/cnn/late_fusion.py --workdir runs/late_fusion \
      --config.dataset.data_dir=DIR_WITH_YOUR_TFDS_sports1m
  python -m vivit_jax.main --config configs/cnn/late_fusion.py:pool --workdir runs/late_pool
  python -m vivit_jax.main --config configs/cnn/late_fusion.py:tiny --workdir runs/late_tiny

Model (vivit_jax/models/fusion.py LateFusion): clips of 16 consecutive frames, of which frames 0
and 15 are fused (num_fusion_frames 2: first and last). The paper's towers are its single-frame
network up to the last convolution, merged in the first of its two fc-4096 layers; here the
ResNet's pooled features (2 x 512) -> fc 4096, ReLU -> dropout 0.5 -> head. Published video hit@1
on Sports-1M: 59.3% (single frame 59.3%). 'pool' is not in the paper.
Tiny: the fused frames are 0 and 7 of 8 at stride 2 (14 source frames apart), fc 64, lr 0.1
(see configs/cnn/single_frame.py); test top-1 0.99 in benchmarks/motion_models.md, ~1.5 min on
2 busy CPU cores.
"""
import os
import sys

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path[:0] = [] if _REPO in sys.path else [_REPO]  # configs.common without installing.
from configs import common  # noqa: E402  pylint: disable=wrong-import-position
from configs.cnn import single_frame  # noqa: E402  pylint: disable=wrong-import-position

NUM_FRAMES = 16  # Frames 0 and 15 of a clip at stride 1: the paper's 15 frames apart.
HIDDEN_WIDTH = 4096
TINY_HIDDEN_WIDTH = 64


def get_config(arg=None):
  """The preset; arg fusion=concat (the paper's, default) or pool, and tiny (CPU size)."""
  args = common.parse_arg(arg, __file__, fusion=('concat', 'pool'))
  config = single_frame.karpathy_config(
      'late_fusion', tiny=args.tiny, num_frames=NUM_FRAMES, fusion=args.fusion,
      num_fusion_frames=2, hidden_width=HIDDEN_WIDTH)
  if args.tiny:
    config.model.hidden_width = TINY_HIDDEN_WIDTH
  return config
