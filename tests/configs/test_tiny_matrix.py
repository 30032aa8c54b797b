"""bfloat16 everywhere it is configured: the ':tiny' version of every paper preset keeps the
preset's compute dtype, param dtype, scan_layers, remat, stochastic depth and attention settings
(only sizes shrink), and its training forward and backward trace as configured (bfloat16 compute,
float32 gradients); and every transformer family trains in bfloat16 with scan_layers, remat and
stochastic depth > 0 together (the K400 ViViT presets have no stochastic depth, so the preset
matrix alone would miss a drop-path leak).

Compiling is what costs on CPU, so the presets are traced (jax.make_jaxpr: shapes and dtypes,
which is where a bfloat16 scan carry promoted to float32 fails) and real steps run once per
distinct block structure: here one scanned transformer family; the CNNs' in tests/models/
(TRAINED_ELSEWHERE). Learning is shown per family in tests/models/ and benchmarks/.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from configs import common
from tests.configs.test_presets import ALL, with_arg
from tests.helpers import fixed_rngs, loss_and_grads, random_params
from vivit_jax import models

# config.model fields a tiny version takes unchanged from its preset (where the preset has them).
KEPT = ('dtype', 'param_dtype', 'scan_layers', 'remat', 'stochastic_depth', 'dropout_rate',
        'attention_dropout_rate', 'attention_impl')
# Tiny versions whose train step, as configured, runs compiled in another test (with further
# checks of their init and BatchNorm statistics) -> that test.
TRAINED_ELSEWHERE = {
    'configs/cnn/i3d_r50_k400.py': 'tests/models/test_cnn3d.py::test_tiny_preset_trains',
    'configs/cnn/slowfast_r50_k400.py': 'tests/models/test_slowfast.py::test_tiny_preset_trains',
    'configs/cnn/cnn_lstm.py': 'tests/models/test_recurrent.py::test_tiny_preset_trains',
    'configs/cnn/conv_gru.py': 'tests/models/test_recurrent.py::test_tiny_preset_trains',
    'configs/cnn/two_stream.py': 'tests/models/test_two_stream.py::test_tiny_preset_trains',
    'configs/cnn/x3d_k400.py': 'tests/models/test_x3d.py::test_tiny_preset_trains',
    'configs/mvit/k400.py': 'tests/models/test_mvit.py::test_tiny_preset_trains',
}
# Traced here: every other distinct tiny config (SSv2's tiny = K400's: tests/configs/
# test_videomae.py; a variant of a preset trained elsewhere shares its step).
TRACED = [s for s in ALL if ':ssv2' not in s and s.partition(':')[0] not in TRAINED_ELSEWHERE]


@pytest.mark.parametrize('spec', ALL)
def test_tiny_keeps_dtype_and_speed_options(spec):
  full, tiny = common.load(spec), common.load(with_arg(spec, 'tiny'))
  assert full.model.dtype == 'bfloat16' and full.model.param_dtype == 'float32', spec
  assert {k: tiny.model.get(k) for k in KEPT} == {k: full.model.get(k) for k in KEPT}, spec


def _cut(model: ml_collections.ConfigDict):
  """Fewer layers, to trace fast: transformers 2 blocks per stack (so the last block's drop-path
  rate is the preset's, not 0), ResNet trunks depth 10 (R(2+1)D and factorised ResNet3D have no
  depth 10). Dtypes and speed options untouched."""
  for field in ('num_layers', 'num_temporal_layers'):
    if field in model:
      model[field] = 2
  if 'depth' in model and model.name != 'r2plus1d' and not model.get('factorised'):
    model.depth = 10


def _training_loss(model, video):
  """params, other collections -> a float32 scalar of the training forward pass (train=True,
  fixed rngs, BatchNorm statistics updated): the masked-modelling loss, or the sum of the
  squared logits."""
  def loss(params, collections):
    out, _ = model.apply({'params': params, **collections}, video, train=True,
                         rngs=fixed_rngs(), mutable=list(collections))
    return out['loss'] if isinstance(out, dict) else jnp.sum(out.astype(jnp.float32) ** 2)
  return loss


@pytest.mark.parametrize('spec', TRACED)
def test_tiny_training_traces_as_configured(spec):
  """The tiny preset's model (depth cut) traces its training forward and backward on two of its
  clips with bfloat16 compute (bf16 ops in the program), float32 params and gradients of the
  params' structure, and a float32 scalar loss."""
  config = common.load(with_arg(spec, 'tiny'))
  _cut(config.model)
  model, ds = models.build(config.model), config.dataset
  video = jnp.zeros((2, ds.num_frames, ds.crop_size, ds.crop_size, 3), jnp.float32)
  variables = nn.unbox(jax.eval_shape(lambda: model.init(
      {'params': jax.random.key(0), 'masking': jax.random.key(1)}, video, train=False)))
  params = variables.pop('params')
  grad = jax.value_and_grad(_training_loss(model, video))
  program = jax.make_jaxpr(grad)(params, variables)
  loss, grads = jax.eval_shape(grad, params, variables)
  assert 'bf16' in str(program), spec
  assert (loss.shape, loss.dtype) == ((), jnp.float32)
  assert jax.tree.structure(grads) == jax.tree.structure(params)
  assert all(g.dtype == jnp.float32 for g in jax.tree.leaves(grads))


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
# Compiled and run (~20 s of CPU: bfloat16 + remat compile slowly on XLA:CPU); the others are
# traced, which is where a promoted carry fails.
RUN = ('vivit_model3',)


@pytest.mark.parametrize('family', FAMILIES)
def test_bfloat16_scan_remat_stochastic_depth_trains(family):
  """bfloat16 + scan_layers + remat 'full' + stochastic depth 0.2 (and dropout): the training
  forward and backward (helpers.loss_and_grads) trace (no float32 promotion of the scanned
  bfloat16 carry) to float32 gradients; for the RUN families they also give a finite loss and
  finite, non-zero gradients."""
  fields = dict(_SIZES, dropout_rate=0.1, attention_dropout_rate=0.0, stochastic_depth=0.2,
                attention_impl='xla', dtype='bfloat16', param_dtype='float32', remat='full',
                scan_layers=True, **FAMILIES[family])
  if fields['name'] != 'videomae_pretrain':
    fields['num_classes'] = 0  # The pooled features: a zero head would stop the gradient.
  if fields['name'] == 'vivit':
    fields['patch_size'] = (2, 4, 4)
  model = models.build(ml_collections.ConfigDict(fields))
  video = jax.random.normal(jax.random.key(0), (2, 4, 16, 16, 3))
  params = random_params(model, video)
  encoder = 'spatial_encoder' if family == 'vivit_model2' else 'encoder'
  assert 'blocks' in params[encoder]  # Scanned.
  # The masked-modelling loss, or the default: the sum of the squared features.
  loss = (lambda out: out['loss']) if family == 'videomae_pretrain' else None
  if family not in RUN:
    grads = jax.eval_shape(lambda p: loss_and_grads(model, p, video, loss)[1], params)
    assert all(g.dtype == jnp.float32 for g in jax.tree.leaves(grads))
    return
  value, grads = jax.device_get(loss_and_grads(model, params, video, loss))
  assert np.isfinite(value)
  assert all(g.dtype == np.float32 and np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
  assert any(np.any(g != 0) for g in jax.tree.leaves(grads[encoder]['blocks']))
