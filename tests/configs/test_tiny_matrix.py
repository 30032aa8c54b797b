"""bfloat16 everywhere it is configured: the ':tiny' version of every paper preset keeps the
preset's compute dtype, param dtype, scan_layers, remat, stochastic depth and attention settings
(only sizes shrink) and trains one step as configured (bfloat16 on CPU); and every transformer
family trains in bfloat16 with scan_layers, remat and stochastic depth > 0 together (the K400
ViViT presets have no stochastic depth, so the preset matrix alone would miss a drop-path leak).
"""
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from tests.configs.test_presets import CNN, PRESETS, VIDEOMAE, _preset
from tests.helpers import assert_one_step_trained, loss_and_grads, train_one_step
from vivit_jax import models

# config.model fields a tiny version takes unchanged from its preset (where the preset has them).
KEPT = ('dtype', 'param_dtype', 'scan_layers', 'remat', 'stochastic_depth', 'dropout_rate',
        'attention_dropout_rate', 'attention_impl')
# Preset arguments with a tiny version besides 'tiny' -> the argument of their full preset.
VARIANTS = {'configs/cnn/i3d_r50_k400.py': ('nonlocal',), 'configs/cnn/late_fusion.py': ('pool',),
            'configs/cnn/r2plus1d_18_k400.py': ('r3d',), 'configs/cnn/cnn_lstm.py': ('snippets',)}
ALL = PRESETS + VIDEOMAE + CNN
TINY_ARGS = [(path, '') for path in ALL] + [(path, v) for path in VARIANTS for v in VARIANTS[path]]
# Tiny versions whose one train step, as configured, another test runs (at a cut depth, with
# further checks of their init and BatchNorm statistics) -> that test.
TRAINED_ELSEWHERE = {
    'configs/videomae/pretrain_k400.py': 'test_presets.py::test_videomae_tiny_presets_train',
    'configs/videomae/finetune_k400.py': 'test_presets.py::test_videomae_tiny_presets_train',
    'configs/cnn/i3d_r50_k400.py': 'tests/models/test_cnn3d.py::test_tiny_preset_trains',
    'configs/cnn/slowfast_r50_k400.py': 'tests/models/test_slowfast.py::test_tiny_preset_trains',
    'configs/cnn/cnn_lstm.py': 'tests/models/test_recurrent.py::test_tiny_preset_trains',
    'configs/cnn/conv_gru.py': 'tests/models/test_recurrent.py::test_tiny_preset_trains',
    'configs/cnn/two_stream.py': 'tests/models/test_two_stream.py::test_tiny_preset_trains',
}
# ViViT Models 2-4 tiny share Model 1's settings and train step; their variants trace in
# bfloat16 + scan in tests/train/test_accelerator_lowering.py (real size) and, with remat and
# stochastic depth, in test_bfloat16_scan_remat_stochastic_depth_trains (Models 2 and 3).
SAME_STEP_AS_MODEL_1 = tuple(f'configs/vivit/b16x2_{v}.py' for v in (
    'factorised_encoder', 'factorised_self_attention', 'factorised_dot_product'))
# One train step here per other distinct tiny config (SSv2 tiny = K400 tiny, checked below).
TRAINED = [p for p in ALL if 'ssv2' not in p and p not in TRAINED_ELSEWHERE
           and p not in SAME_STEP_AS_MODEL_1]


@pytest.mark.parametrize('path, variant', TINY_ARGS)
def test_tiny_keeps_dtype_and_speed_options(path, variant):
  full = _preset(path, variant or None)
  tiny = _preset(path, f'tiny_{variant}' if variant else 'tiny')
  assert full.model.dtype == 'bfloat16' and full.model.param_dtype == 'float32', path
  assert {k: tiny.model.get(k) for k in KEPT} == {k: full.model.get(k) for k in KEPT}, path


@pytest.mark.parametrize('stage', ['pretrain', 'finetune'])
def test_ssv2_tiny_is_k400_tiny(stage):
  assert (_preset(f'configs/videomae/{stage}_ssv2.py', 'tiny').to_dict()
          == _preset(f'configs/videomae/{stage}_k400.py', 'tiny').to_dict())


def _cut(model: ml_collections.ConfigDict):
  """Fewer layers, to compile fast: transformers 2 blocks per stack (so the last block's drop-path
  rate is the preset's, not 0), ResNet trunks depth 10 (R(2+1)D has no depth 10). Dtypes and
  speed options untouched."""
  for field in ('num_layers', 'num_temporal_layers'):
    if field in model:
      model[field] = 2
  if 'depth' in model and model.name != 'r2plus1d':
    model.depth = 10


@pytest.mark.slow  # 40-60 s of CPU each: loop.setup's and the step's compiles.
@pytest.mark.parametrize('path', TRAINED)
def test_tiny_preset_trains_one_step_as_configured(path, synthetic_data_dir, tmp_path):
  """One shared train step (helpers.train_one_step) of the tiny preset in bfloat16 as configured,
  depth cut, without warmup (so the first step's learning rate is the peak, not 0): loss ln(10)
  (the heads start at zero), changed, finite float32 params (helpers.assert_one_step_trained)."""
  config = _preset(path, 'tiny')
  config.dataset.data_dir = synthetic_data_dir
  config.optimizer.warmup_steps = 0
  _cut(config.model)
  exp, initial, state, metrics = train_one_step(config, str(tmp_path), batch_size=8)
  assert exp.model.dtype == jnp.bfloat16
  loss = assert_one_step_trained(initial, state, metrics)
  assert loss == pytest.approx(math.log(10), rel=1e-5)  # Zero heads: uniform probabilities.


# Each distinct scanned-block structure at width 16, 2 blocks per stack, on (2, 4, 16, 16, 3)
# clips: ViViT Model 2's two encoders (Model 1's joint blocks are its spatial ones), Model 3's
# two attention residuals per block, TimeSformer's divided blocks, VideoMAE's encoder and
# decoder (the classifier's encoder is the same). ViViT Model 4 differs inside attention only.
_SIZES = dict(hidden_size=16, num_layers=2, num_heads=2, mlp_dim=32)
FAMILIES = {
    'vivit_model2': dict(name='vivit', variant='factorised_encoder', classifier='token',
                         num_temporal_layers=2),
    'vivit_model3': dict(name='vivit', variant='factorised_self_attention', classifier='gap'),
    'timesformer': dict(name='timesformer', num_frames=4, image_size=16, patch_size=4),
    'videomae_pretrain': dict(name='videomae_pretrain', patch_size=4, tubelet_size=2,
                              decoder_hidden_size=8, decoder_num_layers=2, decoder_num_heads=2,
                              decoder_mlp_dim=16, mask_ratio=0.5),
}


def _random_params(model, video) -> dict:
  """Params of `model`'s init shapes and dtypes, normal(0, 0.02) with LayerNorm scales 1, made
  without compiling the init (which costs as much as the step on CPU)."""
  abstract = jax.eval_shape(lambda: model.init(
      {'params': jax.random.key(1), 'masking': jax.random.key(2)}, video, train=False))
  rng = np.random.default_rng(0)
  return jax.tree_util.tree_map_with_path(
      lambda path, leaf: (np.ones(leaf.shape, leaf.dtype) if path[-1].key == 'scale' else
                          (0.02 * rng.standard_normal(leaf.shape)).astype(leaf.dtype)),
      nn.unbox(abstract)['params'])


@pytest.mark.parametrize('family', FAMILIES)
def test_bfloat16_scan_remat_stochastic_depth_trains(family):
  """bfloat16 + scan_layers + remat 'full' + stochastic depth 0.2 (and dropout): the training
  forward and backward (helpers.loss_and_grads) trace (no float32 promotion of the scanned
  bfloat16 carry), give a finite loss and finite, non-zero float32 gradients."""
  fields = dict(_SIZES, dropout_rate=0.1, attention_dropout_rate=0.0, stochastic_depth=0.2,
                attention_impl='xla', dtype='bfloat16', param_dtype='float32', remat='full',
                scan_layers=True, **FAMILIES[family])
  if fields['name'] != 'videomae_pretrain':
    fields['num_classes'] = 0  # The pooled features: a zero head would stop the gradient.
  if fields['name'] == 'vivit':
    fields['patch_size'] = (2, 4, 4)
  model = models.build(ml_collections.ConfigDict(fields))
  video = jax.random.normal(jax.random.key(0), (2, 4, 16, 16, 3))
  params = _random_params(model, video)
  encoder = 'spatial_encoder' if family == 'vivit_model2' else 'encoder'
  assert 'blocks' in params[encoder]  # Scanned.
  # The masked-modelling loss, or the default: the sum of the squared features.
  loss = (lambda out: out['loss']) if family == 'videomae_pretrain' else None
  value, grads = jax.device_get(loss_and_grads(model, params, video, loss))
  assert np.isfinite(value)
  assert all(g.dtype == np.float32 and np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
  assert any(np.any(g != 0) for g in jax.tree.leaves(grads[encoder]['blocks']))
