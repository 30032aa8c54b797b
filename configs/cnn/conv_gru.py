r"""GRU-RCN on Kinetics-400: ConvGRUs over the feature maps of four levels of a 2D ResNet-18
(Ballas et al. 2016, "Delving Deeper into Convolutional Networks for Learning Video
Representations", ICLR, arXiv:1511.06432). Shared parts in configs/cnn/recipe.py.

  python -m vivit_jax.main --config configs/cnn/conv_gru.py --workdir runs/conv_gru
  python -m vivit_jax.main --config configs/cnn/conv_gru.py:tiny --workdir runs/conv_gru_tiny

Model (vivit_jax/models/recurrent.py, ConvGRU): ResNet-18 on every frame; the outputs of its four
stages (strides 4, 8, 16, 32, 64-512 channels: the counterparts of the paper's VGG-16 percepts
pool2-pool5, 128-512 channels at the same strides) each feed their own ConvGRU with 3 x 3
convolutions and as many channels as its input (this preset's choice), weights shared over time;
each level's last hidden map is average-pooled into a linear classifier, and the four levels'
logits are averaged (the paper averages the levels' predictions). This is the paper's GRU-RCN
variant, not Stacked GRU-RCN (worse in the paper's UCF-101 experiments) nor the bidirectional
one.
Recipe of this preset (the paper trains the GRUs on top of a fixed ImageNet VGG-16 on UCF-101):
16 frames at stride 4, 224 crops, horizontal flip, mean/std 0.45/0.225, SGD momentum 0.9, weight
decay 1e-4 (not on BN or biases), gradient norm clipped at 1, batch 64, lr 0.05, 5 warmup epochs
then cosine over 45, dropout 0.5 before each classifier; testing 10 clips x 1 centre crop.

Expect: no published Kinetics result for this recipe (the paper reports UCF-101), and none
measured here (no Kinetics, no accelerator).
Differs from the paper: ResNet-18 trained end to end from scratch (set config.init_from.path to
start from weights) in place of a frozen ImageNet VGG-16, no fc7 level (a 1 x 1 ConvGRU there),
Kinetics in place of UCF-101, no optical-flow stream, logits (not probabilities) averaged over
levels.
Tiny: depth 18 at base_width 8 (ConvGRUs of 8, 16, 32, 64 channels) on synthetic_motion
8 x 28 x 28 clips, 300 steps of AdamW (configs/default.py's, lr 2e-3): with SGD (lr 0.1, Nesterov,
clipped at 1) it reached only test top-1 0.33 in 300 steps. benchmarks/motion_models.md has the
AdamW result.
"""
import os
import sys

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path[:0] = [] if _REPO in sys.path else [_REPO]  # configs.common without installing.
from configs import common  # noqa: E402  pylint: disable=wrong-import-position
from configs.cnn import recipe  # noqa: E402  pylint: disable=wrong-import-position

BATCH_SIZE = 64
EPOCHS = 45
WARMUP_EPOCHS = 5
LEVELS = (1, 2, 3, 4)


def hidden_widths(base_width: int) -> tuple[int, ...]:
  """ConvGRU channels per level: those of ResNet-18's stage outputs, base_width x 1, 2, 4, 8."""
  return tuple(base_width * 2 ** (s - 1) for s in LEVELS)


def get_config(arg=None):
  """The preset; arg 'tiny' gives its CPU-size version."""
  args = common.parse_arg(arg, __file__)
  config = recipe.default_config()
  config.model = recipe.model_config('conv_gru', num_classes=400, depth=18, base_width=64,
                                     levels=LEVELS, hidden_widths=hidden_widths(64),
                                     kernel_size=3, zero_init_residual=True,
                                     dropout_rate=0.5)
  recipe.kinetics_sgd(config, num_frames=16, stride=4, batch_size=BATCH_SIZE,
                      learning_rate=0.05, epochs=EPOCHS, warmup_epochs=WARMUP_EPOCHS,
                      nesterov=False, eval_crops=1, grad_clip_norm=1.0,
                      eval_every_epochs=5)
  if args.tiny:
    return recipe.tiny_adamw(
        recipe.tiny(config, hidden_widths=hidden_widths(recipe.TINY_BASE_WIDTH)))
  return config
