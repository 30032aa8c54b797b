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
import runpy

_SINGLE_FRAME = runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                            'single_frame.py'))

NUM_FRAMES = 10


def get_config(arg=None):
  """The preset; arg '' (the paper's early fusion) or 'tiny' (CPU size)."""
  return _SINGLE_FRAME['karpathy_config']('early_fusion', arg, num_frames=NUM_FRAMES)
