"""configs/videomae/{pretrain,finetune}.py and their recipe.py: the full-size structure of every
dataset and size, a forward pass at reduced size and the tiny versions (traced as configured in
tests/configs/test_tiny_matrix.py, which also runs a bfloat16 pre-training step)."""
import jax
import jax.numpy as jnp
import pytest

from configs import common
from tests.configs.test_presets import VIDEOMAE
from tests.helpers import random_params
from vivit_jax import models


@pytest.mark.parametrize('spec', VIDEOMAE)
@pytest.mark.parametrize('size, width, depth', [('S', 384, 12), ('B', 768, 12), ('L', 1024, 24)])
def test_structure(spec, size, width, depth):
  config = common.load(f'{spec},{size}' if ':' in spec else f'{spec}:{size}')
  pretrain, k400 = 'pretrain' in spec, 'ssv2' not in spec
  model = models.build(config.model)
  assert (model.hidden_size, model.num_layers, model.patch_size, model.tubelet_size) == (
      width, depth, 16, 2)
  ds = config.dataset
  assert (ds.name, ds.num_frames, ds.stride, ds.crop_size, ds.flip) == (
      'kinetics400' if k400 else 'something_something_v2', 16, 4 if k400 else 2, 224, k400)
  opt = config.optimizer
  assert (opt.name, opt.weight_decay, opt.b1) == ('adamw', 0.05, 0.9)
  if pretrain:
    assert config.task == 'masked_video_modeling' and config.model.name == 'videomae_pretrain'
    assert (model.mask_type, model.mask_ratio, model.norm_pix_loss) == ('tube', 0.9, True)
    assert model.decoder_num_layers == (12 if size == 'L' else 4)
    assert model.decoder_hidden_size == width // 2
    # 1.5e-4 x batch / 256 after 40 warmup epochs; b2 0.95.
    assert opt.learning_rate == pytest.approx(1.5e-4 * config.train.batch_size / 256)
    assert opt.b2 == 0.95 and opt.layer_decay == 1.0
  else:
    assert config.task == 'classification' and config.model.name == 'videomae'
    assert model.num_classes == (400 if k400 else 174) and model.use_mean_pooling
    assert model.stochastic_depth == 0.1 and opt.b2 == 0.999
    assert opt.layer_decay == (0.7 if (size, k400) == ('S', False) else 0.75)
    assert (config.train.mixup_alpha, config.train.cutmix_alpha,
            config.train.label_smoothing) == (0.8, 1.0, 0.1)
    assert (ds.eval_clips, ds.eval_crops) == ((5, 3) if k400 else (2, 3))


# Pre-training on SSv2 builds the K400 model (only the classifier's classes differ by dataset).
@pytest.mark.parametrize('spec', [s for s in VIDEOMAE if s != 'configs/videomae/pretrain.py:ssv2'])
def test_forward_at_reduced_size(spec):
  config = common.load(spec)
  config.model.update(hidden_size=32, num_heads=4, mlp_dim=64, num_layers=1, dtype='float32')
  if 'pretrain' in spec:
    config.model.update(decoder_hidden_size=16, decoder_num_heads=2, decoder_mlp_dim=32,
                        decoder_num_layers=1, mask_ratio=0.5)  # 0.9 masks a 2 x 2 grid whole.
  model = models.build(config.model)
  video = jax.random.normal(jax.random.key(0), (2, 4, 32, 32, 3))
  forward = jax.jit(lambda params, x: model.apply({'params': params}, x, train=False,
                                                  rngs={'masking': jax.random.key(3)}))
  out = forward(random_params(model, video), video)
  if 'pretrain' in spec:  # 2 x 2 x 2 cubes, 2 of the 4 spatial positions masked at both times.
    assert out['pred'].shape == (2, 4, 2 * 16 * 16 * 3) and bool(jnp.isfinite(out['loss']))
  else:
    assert out.shape == (2, 174 if 'ssv2' in spec else 400) and bool(jnp.all(jnp.isfinite(out)))


@pytest.mark.parametrize('stage', ['pretrain', 'finetune'])
def test_ssv2_tiny_is_k400_tiny(stage):
  assert (common.load(f'configs/videomae/{stage}.py:ssv2,tiny').to_dict()
          == common.load(f'configs/videomae/{stage}.py:tiny').to_dict())


def test_pretrain_and_finetune_tiny_read_the_same_clips():
  assert (common.load('configs/videomae/pretrain.py:tiny').dataset.to_dict()
          == common.load('configs/videomae/finetune.py:tiny').dataset.to_dict())
