r"""VideoMAE self-supervised pre-training (16 frames at 224^2, tube masking 0.9), ViT-S/B/L, on
Kinetics-400 (stride 4, 1600 epochs) or Something-Something v2 (stride 2, 2400 epochs, no flips);
the argument (`dataset=` k400 | ssv2, `size=` B | S | L, `tiny`), the settings and their sources
are in configs/videomae/recipe.py.

  python -m vivit_jax.main --config configs/videomae/pretrain.py:B \
      --workdir runs/videomae_pretrain_k400_b
  python -m vivit_jax.main --config configs/videomae/pretrain.py:ssv2,B \
      --workdir runs/videomae_pretrain_ssv2_b
  python -m vivit_jax.main --config configs/videomae/pretrain.py:tiny --workdir runs/tiny_pretrain

Expect (the paper, after fine-tuning with configs/videomae/finetune.py): ViT-B 81.5% top-1 on
Kinetics-400, 70.8% on Something-Something v2. Not measured here: no Kinetics, no SSv2 and no
accelerator (the paper: 64 V100s).
The tiny version pre-trains on synthetic_motion, in bfloat16 as the paper run, for
recipe.TINY_PRETRAIN_STEPS (1500) steps and writes reconstruction PNGs to
WORKDIR/reconstructions/. Measured (benchmarks/videomae_pretraining.md, in float32 before the tiny
versions kept bfloat16): test reconstruction loss 0.98 after ~11-13 minutes on 2 CPU cores, and
fine-tuning from it reaches test top-1 0.986 (0.949 from scratch).
"""
import os
import sys

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path[:0] = [] if _REPO in sys.path else [_REPO]  # configs.common without installing.
from configs.videomae import recipe  # noqa: E402  pylint: disable=wrong-import-position


def get_config(arg=None):
  """The preset of arg (the module docstring)."""
  return recipe.pretrain(recipe.parse_arg(arg, __file__))
