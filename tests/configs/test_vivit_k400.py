"""configs/vivit/k400.py: the five released ViViT/16x2 Kinetics-400 recipes by argument, their
full-size structure, a forward pass at reduced size, and what their tiny versions keep."""
import jax
import jax.numpy as jnp
import ml_collections
import pytest

from configs import common
from tests.helpers import random_params
from vivit_jax import models

PRESET = 'configs/vivit/k400.py'
WIDTHS = {'B': 768, 'L': 1024}
RECIPES = [('spatio_temporal', 'B'), ('factorised_encoder', 'B'),
           ('factorised_self_attention', 'B'), ('factorised_dot_product', 'B'),
           ('factorised_encoder', 'L')]


@pytest.mark.parametrize('variant, size', RECIPES)
def test_structure(variant, size):
  config = common.load(f'{PRESET}:variant={variant},size={size}')
  model = models.build(config.model)
  assert (model.variant, model.hidden_size, model.num_classes) == (variant, WIDTHS[size], 400)
  assert tuple(model.patch_size) == (2, 16, 16) and model.tokenizer == 'tubelet'
  assert model.classifier == ('token' if variant in ('spatio_temporal', 'factorised_encoder')
                              else 'gap')
  assert (config.dataset.name, config.dataset.num_frames, config.dataset.crop_size,
          config.dataset.stride) == ('kinetics400', 32, 224, 2)
  opt = config.optimizer
  assert (opt.name, opt.momentum, opt.nesterov, opt.weight_decay) == ('sgd', 0.9, False, 0.0)
  assert opt.learning_rate == (0.05 if (variant, size) == ('factorised_encoder', 'B') else 0.1)
  assert config.train.batch_size == 64
  assert config.train.num_steps == 30 * (common.KINETICS400_TRAIN_CLIPS // 64)
  assert config.init_from.kernel_init == 'central_frame'


def test_large_is_released_as_factorised_encoder_only():
  with pytest.raises(ValueError, match='factorised_encoder,L'):
    common.load(f'{PRESET}:L')


def reduced(model_config: ml_collections.ConfigDict, frames: int, side: int):
  """The preset's model, 1 layer of width 32, for clips (frames, side, side); tubelets kept."""
  model_config.update(hidden_size=32, num_heads=4, mlp_dim=64, num_layers=1, dtype='float32')
  if 'num_temporal_layers' in model_config:
    model_config.num_temporal_layers = 1
  if model_config.name == 'timesformer':
    model_config.update(num_frames=frames, image_size=side)
  return model_config


def forward_at_reduced_size(config) -> jax.Array:
  """Logits of the reduced(config.model) (random params) on a random (2, 4, 32, 32, 3) clip."""
  model = models.build(reduced(config.model, 4, 32))
  video = jax.random.normal(jax.random.key(0), (2, 4, 32, 32, 3))
  forward = jax.jit(lambda params, x: model.apply({'params': params}, x, train=False))
  return forward(random_params(model, video), video)


@pytest.mark.parametrize('variant', [v for v, size in RECIPES if size == 'B'])
def test_forward_at_reduced_size(variant):
  logits = forward_at_reduced_size(common.load(f'{PRESET}:{variant}'))
  assert logits.shape == (2, 400) and bool(jnp.all(jnp.isfinite(logits)))


def test_tiny_keeps_the_preset_choices():
  for variant, size in RECIPES:
    spec = f'{PRESET}:{variant},{size}'
    full, tiny = common.load(spec), common.load(f'{spec},tiny')
    kept = ('name', 'variant', 'tokenizer', 'classifier', 'stochastic_depth', 'dropout_rate')
    assert {k: full.model.get(k) for k in kept} == {k: tiny.model.get(k) for k in kept}, spec
    assert tiny.optimizer.to_dict() == dict(full.optimizer.to_dict(), warmup_steps=60), spec
    assert (tiny.dataset.name, tiny.model.num_classes, tiny.model.hidden_size) == (
        'synthetic_motion', 10, 64)
  with pytest.raises(ValueError, match="Unknown preset argument 'huge'"):
    common.load(f'{PRESET}:huge')


def test_large_tiny_is_base_tiny_but_its_learning_rate_and_remat():
  base = common.load(f'{PRESET}:factorised_encoder,tiny')
  large = common.load(f'{PRESET}:factorised_encoder,L,tiny')
  assert (large.model.remat, base.model.remat) == ('dots', 'none')  # Kept from the presets.
  large.optimizer.learning_rate = base.optimizer.learning_rate
  large.model.remat = base.model.remat
  assert large.to_dict() == base.to_dict()
