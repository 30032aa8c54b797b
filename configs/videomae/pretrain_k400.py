r"""VideoMAE self-supervised pre-training on Kinetics-400 (16 frames, stride 4, 224^2, tube masking
0.9, 1600 epochs), ViT-S/B/L; the settings and their sources are in configs/videomae/common.py.

  python -m vivit_jax.main --config configs/videomae/pretrain_k400.py:B \
      --workdir runs/videomae_pretrain_k400_b
  python -m vivit_jax.main --config configs/videomae/pretrain_k400.py:tiny \
      --workdir runs/tiny_pretrain

The paper's ViT-B reaches 81.5% top-1 after fine-tuning (finetune_k400.py). The tiny version
pre-trains on synthetic_motion, in bfloat16 as the paper run, for TINY_PRETRAIN_STEPS (1500)
steps (~11-13 minutes on 2 CPU cores when measured in float32, see configs/videomae/common.py)
and writes reconstruction PNGs to WORKDIR/reconstructions/.
"""
import os
import runpy

_COMMON = runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'common.py'))


def get_config(arg=None):
  """The preset at size arg ('S', 'B' (default) or 'L'), or 'tiny' for its CPU version."""
  return _COMMON['pretrain'](arg, dataset='k400')
