r"""VideoMAE fine-tuning from a pre-training run (layer decay, drop path 0.1, Mixup + CutMix, label
smoothing), ViT-S/B/L, on Kinetics-400 (5 x 3 test views) or Something-Something v2 (2 x 3); the
argument (`dataset=` k400 | ssv2, `size=` B | S | L, `tiny`), the settings and their sources are
in configs/videomae/recipe.py. Point config.init_from.path at the pre-training workdir:

  python -m vivit_jax.main --config configs/videomae/finetune.py:B \
      --workdir runs/videomae_finetune_k400_b \
      --config.init_from.path=runs/videomae_pretrain_k400_b
  python -m vivit_jax.main --config configs/videomae/finetune.py:ssv2,B \
      --workdir runs/videomae_finetune_ssv2_b \
      --config.init_from.path=runs/videomae_pretrain_ssv2_b
  python -m vivit_jax.main --config configs/videomae/finetune.py:tiny \
      --workdir runs/tiny_finetune --config.init_from.path=runs/tiny_pretrain

Expect (the paper): Kinetics-400 top-1 ViT-S 79.0%, ViT-B 81.5%, ViT-L 85.2% (5 x 3 views);
Something-Something v2 ViT-S 66.8%, ViT-B 70.8%, ViT-L 74.3% (2 x 3 views). Not measured here:
no Kinetics, no SSv2 and no accelerator.
The tiny version (300 steps on synthetic_motion) measured, from the tiny pre-training
(benchmarks/videomae_pretraining.md, in float32 before the tiny versions kept bfloat16): test
top-1 0.986 over 4 seeds (from scratch 0.949), ~2.5 minutes on 2 CPU cores.
"""
import os
import sys

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path[:0] = [] if _REPO in sys.path else [_REPO]  # configs.common without installing.
from configs.videomae import recipe  # noqa: E402  pylint: disable=wrong-import-position


def get_config(arg=None):
  """The preset of arg (the module docstring)."""
  return recipe.finetune(recipe.parse_arg(arg, __file__))
