r"""VideoMAE self-supervised pre-training on Something-Something v2 (16 frames, stride 2, 224^2, tube
masking 0.9, 2400 epochs, no flips), ViT-S/B/L; settings and sources in configs/videomae/common.py.

  python -m vivit_jax.main --config configs/videomae/pretrain_ssv2.py:B \
      --workdir runs/videomae_pretrain_ssv2_b
  python -m vivit_jax.main --config configs/videomae/pretrain_ssv2.py:tiny \
      --workdir runs/tiny_pretrain

The paper's ViT-B reaches 70.8% top-1 after fine-tuning (finetune_ssv2.py).
"""
import os
import runpy

_COMMON = runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'common.py'))


def get_config(arg=None):
  """The preset at size arg ('S', 'B' (default) or 'L'), or 'tiny' for its CPU version."""
  return _COMMON['pretrain'](arg, dataset='ssv2')
