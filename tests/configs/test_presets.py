"""Paper presets: their full-size structure, a forward pass at reduced size, what their tiny
versions keep, train steps of the VideoMAE tiny versions on synthetic_motion (every tiny version's:
test_tiny_matrix.py), and the SGD optimizer they use."""
import glob
import math
import os
import runpy

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from tests.helpers import REPO, assert_one_step_trained, train_one_step
from vivit_jax import models
from vivit_jax.train import loop, optim

VIVIT = {  # Preset -> (variant, size).
    'b16x2_spatio_temporal': ('spatio_temporal', 'B'),
    'b16x2_factorised_encoder': ('factorised_encoder', 'B'),
    'b16x2_factorised_self_attention': ('factorised_self_attention', 'B'),
    'b16x2_factorised_dot_product': ('factorised_dot_product', 'B'),
    'l16x2_factorised_encoder': ('factorised_encoder', 'L'),
}
WIDTHS = {'B': 768, 'L': 1024}
PRESETS = [f'configs/vivit/{name}.py' for name in VIVIT] + ['configs/timesformer/base_8x224.py']
VIDEOMAE = [f'configs/videomae/{stage}_{dataset}.py' for stage in ('pretrain', 'finetune')
            for dataset in ('k400', 'ssv2')]
# The convolutional and recurrent presets, tested with their models in tests/models/.
CNN = [f'configs/cnn/{name}.py' for name in (
    'c3d_sports1m', 'cnn_lstm', 'conv_gru', 'early_fusion', 'i3d_r50_k400', 'late_fusion',
    'r2plus1d_18_k400', 'single_frame', 'slowfast_r50_k400', 'two_stream')]


def _preset(path: str, arg=None) -> ml_collections.ConfigDict:
  return runpy.run_path(os.path.join(REPO, path))['get_config'](arg)


def test_every_preset_file_is_listed():
  found = {os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, 'configs/*/*.py'))}
  assert {p for p in found if not p.endswith('/common.py')} == set(PRESETS + VIDEOMAE + CNN)


@pytest.mark.parametrize('name', VIVIT)
def test_vivit_preset_structure(name):
  config = _preset(f'configs/vivit/{name}.py')
  variant, size = VIVIT[name]
  model = models.build(config.model)
  assert (model.variant, model.hidden_size, model.num_classes) == (variant, WIDTHS[size], 400)
  assert tuple(model.patch_size) == (2, 16, 16) and model.tokenizer == 'tubelet'
  assert model.classifier == ('token' if variant in ('spatio_temporal', 'factorised_encoder')
                              else 'gap')
  assert (config.dataset.name, config.dataset.num_frames, config.dataset.crop_size,
          config.dataset.stride) == ('kinetics400', 32, 224, 2)
  opt = config.optimizer
  assert (opt.name, opt.momentum, opt.nesterov, opt.weight_decay) == ('sgd', 0.9, False, 0.0)
  assert config.train.batch_size == 64 and config.train.num_steps == 30 * (214834 // 64)
  assert config.init_from.kernel_init == 'central_frame'


def test_timesformer_preset_structure():
  config = _preset('configs/timesformer/base_8x224.py')
  model = models.build(config.model)
  assert (model.num_frames, model.image_size, model.patch_size, model.hidden_size,
          model.num_layers, model.num_classes) == (8, 224, 16, 768, 12, 400)
  ds = config.dataset
  assert (ds.name, ds.num_frames, ds.stride, ds.crop_size) == ('kinetics400', 8, 32, 224)
  assert (config.optimizer.name, config.optimizer.nesterov) == ('sgd', True)


def _reduced(model_config: ml_collections.ConfigDict, frames: int, side: int):
  """The preset's model, 1 layer of width 32, for clips (frames, side, side); tubelets kept."""
  model_config.update(hidden_size=32, num_heads=4, mlp_dim=64, num_layers=1, dtype='float32')
  if 'num_temporal_layers' in model_config:
    model_config.num_temporal_layers = 1
  if model_config.name == 'timesformer':
    model_config.update(num_frames=frames, image_size=side)
  return model_config


@pytest.mark.parametrize('path', PRESETS)
def test_preset_forward_at_reduced_size(path):
  model = models.build(_reduced(_preset(path).model, 4, 32))
  video = jax.random.normal(jax.random.key(0), (2, 4, 32, 32, 3))
  forward = jax.jit(lambda key, x: model.apply(model.init(key, x, train=False), x, train=False))
  logits = forward(jax.random.key(1), video)
  assert logits.shape == (2, 400) and bool(jnp.all(jnp.isfinite(logits)))


def test_tiny_keeps_the_preset_choices():
  for path in PRESETS:
    full, tiny = _preset(path), _preset(path, 'tiny')
    kept = ('name', 'variant', 'tokenizer', 'classifier', 'stochastic_depth', 'dropout_rate')
    assert {k: full.model.get(k) for k in kept} == {k: tiny.model.get(k) for k in kept}, path
    assert tiny.optimizer.to_dict() == dict(full.optimizer.to_dict(), warmup_steps=60), path
    assert (tiny.dataset.name, tiny.model.num_classes, tiny.model.hidden_size) == (
        'synthetic_motion', 10, 64)
  with pytest.raises(ValueError, match="Unknown preset argument 'huge'"):
    _preset(PRESETS[0], 'huge')


def test_large_tiny_is_base_tiny_but_its_learning_rate_and_remat():
  base = _preset('configs/vivit/b16x2_factorised_encoder.py', 'tiny')
  large = _preset('configs/vivit/l16x2_factorised_encoder.py', 'tiny')
  assert (large.model.remat, base.model.remat) == ('dots', 'none')  # Kept from the presets.
  large.optimizer.learning_rate = base.optimizer.learning_rate
  large.model.remat = base.model.remat
  assert large.to_dict() == base.to_dict()


# The tiny versions' train steps (bfloat16, scan_layers, remat as configured) are in
# tests/configs/test_tiny_matrix.py.


def _sgd_config(**fields):
  config = ml_collections.ConfigDict(dict(
      name='sgd', learning_rate=0.1, end_learning_rate=0.0, warmup_steps=0, weight_decay=0.01,
      grad_clip_norm=1e9))
  config.update(fields)
  return config


@pytest.mark.parametrize('fields, momentum, nesterov', [
    ({}, 0.9, False),  # Defaults, as for configs/default.py's optimizer section.
    ({'momentum': 0.5, 'nesterov': True}, 0.5, True),
])
def test_sgd_matches_hand_computed_updates(fields, momentum, nesterov):
  params = {'kernel': jnp.ones((2, 2)), 'bias': jnp.ones((2,))}
  grads = {'kernel': jnp.full((2, 2), 0.5), 'bias': jnp.full((2,), -0.5)}
  tx, schedule = optim.make_optimizer(_sgd_config(**fields), num_steps=10)
  opt_state, p = tx.init(params), params
  expected, trace = {k: np.asarray(v) for k, v in params.items()}, {k: 0.0 for k in params}
  for i in range(2):
    updates, opt_state = tx.update(grads, opt_state, p)
    p = optax.apply_updates(p, updates)
    for k in params:  # L2 decay on kernels only, then (Nesterov) momentum.
      g = np.asarray(grads[k]) + (0.01 * expected[k] if k == 'kernel' else 0.0)
      trace[k] = g + momentum * trace[k]
      expected[k] = expected[k] - float(schedule(i)) * (g + momentum * trace[k] if nesterov
                                                        else trace[k])
  for k in params:
    np.testing.assert_allclose(p[k], expected[k], rtol=1e-6)


@pytest.mark.parametrize('path', VIDEOMAE)
@pytest.mark.parametrize('size, width, depth', [('S', 384, 12), ('B', 768, 12), ('L', 1024, 24)])
def test_videomae_preset_structure(path, size, width, depth):
  config = _preset(path, size)
  pretrain, k400 = 'pretrain' in path, 'k400' in path
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


@pytest.mark.parametrize('path', VIDEOMAE)
def test_videomae_preset_forward_at_reduced_size(path):
  config = _preset(path)
  config.model.update(hidden_size=32, num_heads=4, mlp_dim=64, num_layers=1, dtype='float32')
  if 'pretrain' in path:
    config.model.update(decoder_hidden_size=16, decoder_num_heads=2, decoder_mlp_dim=32,
                        decoder_num_layers=1, mask_ratio=0.5)  # 0.9 masks a 2 x 2 grid whole.
  model = models.build(config.model)
  video = jax.random.normal(jax.random.key(0), (2, 4, 32, 32, 3))
  rngs = {'params': jax.random.key(1), 'masking': jax.random.key(2)}
  forward = jax.jit(lambda x: model.apply(model.init(rngs, x, train=False), x, train=False,
                                          rngs={'masking': jax.random.key(3)}))
  out = forward(video)
  if 'pretrain' in path:  # 2 x 2 x 2 cubes, 2 of the 4 spatial positions masked at both times.
    assert out['pred'].shape == (2, 4, 2 * 16 * 16 * 3) and bool(jnp.isfinite(out['loss']))
  else:
    assert out.shape == (2, 174 if 'ssv2' in path else 400) and bool(jnp.all(jnp.isfinite(out)))


@pytest.mark.slow
@pytest.mark.parametrize('stage', ['pretrain', 'finetune'])
def test_videomae_tiny_presets_train(stage, synthetic_data_dir, tmp_path):
  """One shared train step (helpers.train_one_step) of the tiny preset as configured (bfloat16),
  at 2 blocks (drop path runs in the second), without warmup; the fine-tuning one starts from the
  pre-training one's params. test_tiny_matrix.py counts on it for the VideoMAE presets."""
  configs = {s: _preset(f'configs/videomae/{s}_k400.py', 'tiny') for s in ('pretrain', 'finetune')}
  assert configs['pretrain'].dataset.to_dict() == configs['finetune'].dataset.to_dict()
  config = configs[stage]
  config.dataset.data_dir = synthetic_data_dir
  config.model.num_layers = 2
  config.optimizer.warmup_steps = 0
  if stage == 'finetune':
    source = configs['pretrain']
    source.model.num_layers = 2
    params = jax.device_get(loop.setup(source, str(tmp_path / 'pt')).state.params)
    from vivit_jax.saved import checkpoints  # pylint: disable=import-outside-toplevel
    checkpoints.save_params(str(tmp_path / 'pt_params'), params, source.model.to_dict())
    config.init_from.path = str(tmp_path / 'pt_params')
  exp, initial, state, metrics = train_one_step(config, str(tmp_path / stage), batch_size=8)
  assert exp.model.dtype == jnp.bfloat16
  if stage == 'finetune':
    np.testing.assert_array_equal(initial.params['encoder']['block_1']['mlp']['fc1']['kernel'],
                                  params['encoder']['block_1']['mlp']['fc1']['kernel'])
  loss = assert_one_step_trained(initial, state, metrics)
  if stage == 'finetune':  # Zero head: uniform probabilities against smoothed targets.
    assert loss == pytest.approx(math.log(10), rel=1e-5)
  else:  # Normalised-pixel targets have unit variance; a fresh decoder predicts ~0.
    assert 0.8 < loss < 1.5
