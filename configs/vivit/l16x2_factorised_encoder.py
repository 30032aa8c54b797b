r"""ViViT-L/16x2 FE, Model 2 (24 spatial then 24 temporal layers, as released; CLS token) on
Kinetics-400, 32x224x224 clips, with the settings of configs/vivit/common.py.

Sources: google-research/scenic,
scenic/projects/vivit/configs/kinetics400/vivit_large_factorised_encoder.py (base learning rate 0.1,
temporal_transformer.num_layers = 24); Arnab et al. 2021 (ViViT, arXiv:2103.15691), Sec. 4.3 and
Table 6.

  python -m vivit_jax.main --config configs/vivit/l16x2_factorised_encoder.py \
      --workdir runs/l16x2_factorised_encoder
  python -m vivit_jax.main --config configs/vivit/l16x2_factorised_encoder.py:tiny \
      --workdir runs/tiny

The first needs a 'kinetics400' TFDS dataset and config.init_from.path (ViT ImageNet-21k); the
second trains the same variant and optimizer, in bfloat16 with scanned layers and 'dots' remat as
the first, at CPU size on synthetic_motion (300 steps).
"""
import os
import runpy

_COMMON = runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'common.py'))


def get_config(arg=None):
  """The preset; arg 'tiny' gives its CPU-sized version."""
  return _COMMON['kinetics400'](arg, variant='factorised_encoder', size='L', classifier='token',
                                learning_rate=0.1, num_temporal_layers=24,
                                remat='dots')  # ViT-L activations: recompute attention.
