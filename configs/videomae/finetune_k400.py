r"""VideoMAE fine-tuning on Kinetics-400 from a pre-training run (layer decay, drop path 0.1, Mixup +
CutMix, label smoothing, 5 x 3 test views), ViT-S/B/L; settings and sources in
configs/videomae/common.py. Point config.init_from.path at the pre-training workdir:

  python -m vivit_jax.main --config configs/videomae/finetune_k400.py:B \
      --workdir runs/videomae_finetune_k400_b \
      --config.init_from.path=runs/videomae_pretrain_k400_b
  python -m vivit_jax.main --config configs/videomae/finetune_k400.py:tiny \
      --workdir runs/tiny_finetune \
      --config.init_from.path=runs/tiny_pretrain

The paper: ViT-S 79.0%, ViT-B 81.5%, ViT-L 85.2% top-1 (5 x 3 views).
"""
import os
import runpy

_COMMON = runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'common.py'))


def get_config(arg=None):
  """The preset at size arg ('S', 'B' (default) or 'L'), or 'tiny' for its CPU version."""
  return _COMMON['finetune'](arg, dataset='k400')
