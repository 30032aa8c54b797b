r"""VideoMAE fine-tuning on Something-Something v2 from a pre-training run (layer decay, drop path 0.1,
Mixup + CutMix, label smoothing, 2 x 3 test views), ViT-S/B/L; settings and sources in
configs/videomae/common.py. Point config.init_from.path at the pre-training workdir:

  python -m vivit_jax.main --config configs/videomae/finetune_ssv2.py:B \
      --workdir runs/videomae_finetune_ssv2_b \
      --config.init_from.path=runs/videomae_pretrain_ssv2_b
  python -m vivit_jax.main --config configs/videomae/finetune_ssv2.py:tiny \
      --workdir runs/tiny_finetune \
      --config.init_from.path=runs/tiny_pretrain

The paper: ViT-S 66.8%, ViT-B 70.8%, ViT-L 74.3% top-1 (2 x 3 views).
"""
import os
import runpy

_COMMON = runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'common.py'))


def get_config(arg=None):
  """The preset at size arg ('S', 'B' (default) or 'L'), or 'tiny' for its CPU version."""
  return _COMMON['finetune'](arg, dataset='ssv2')
