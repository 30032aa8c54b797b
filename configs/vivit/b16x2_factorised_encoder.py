r"""ViViT-B/16x2 FE, Model 2 (spatial encoder, then a 4-layer temporal encoder; CLS token) on
Kinetics-400, 32x224x224 clips, with the settings of configs/vivit/common.py.

Sources: google-research/scenic,
scenic/projects/vivit/configs/kinetics400/vivit_base_factorised_encoder.py (base learning rate 0.05,
4 temporal layers); Arnab et al. 2021 (ViViT, arXiv:2103.15691), Sec. 3.3 Model 2 and Table 4.

  python -m vivit_jax.main --config configs/vivit/b16x2_factorised_encoder.py \
      --workdir runs/b16x2_factorised_encoder
  python -m vivit_jax.main --config configs/vivit/b16x2_factorised_encoder.py:tiny \
      --workdir runs/tiny

The first needs a 'kinetics400' TFDS dataset and config.init_from.path (ViT ImageNet-21k); the
second trains the same variant and optimizer, in bfloat16 with scanned layers as the first, at
CPU size on synthetic_motion (300 steps).
"""
import os
import runpy

_COMMON = runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'common.py'))


def get_config(arg=None):
  """The preset; arg 'tiny' gives its CPU-sized version."""
  return _COMMON['kinetics400'](arg, variant='factorised_encoder', size='B', classifier='token',
                                learning_rate=0.05, num_temporal_layers=4)
