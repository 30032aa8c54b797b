"""configs/timesformer/base_8x224.py: the full-size structure and a forward pass at reduced size
(its tiny version: tests/configs/test_tiny_matrix.py)."""
import jax.numpy as jnp

from configs import common
from tests.configs.test_vivit_k400 import forward_at_reduced_size
from vivit_jax import models

PRESET = 'configs/timesformer/base_8x224.py'


def test_structure():
  config = common.load(PRESET)
  model = models.build(config.model)
  assert (model.num_frames, model.image_size, model.patch_size, model.hidden_size,
          model.num_layers, model.num_classes) == (8, 224, 16, 768, 12, 400)
  ds = config.dataset
  assert (ds.name, ds.num_frames, ds.stride, ds.crop_size) == ('kinetics400', 8, 32, 224)
  assert (config.optimizer.name, config.optimizer.nesterov) == ('sgd', True)
  assert config.optimizer.grad_clip_norm == common.NO_CLIPPING


def test_forward_at_reduced_size():
  logits = forward_at_reduced_size(common.load(PRESET))
  assert logits.shape == (2, 400) and bool(jnp.all(jnp.isfinite(logits)))
