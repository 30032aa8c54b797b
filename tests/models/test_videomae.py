"""VideoMAE: the model's masks, decoder masking, targets, learning, encoder sharing, remat and
scan_layers, config errors."""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from tests.helpers import assert_remat_keeps_loss_and_gradients, assert_scan_equals_unrolled
from vivit_jax import models
from vivit_jax.models import masking, videomae

VIDEO_SHAPE = (2, 4, 16, 16, 3)  # 2 x 4 x 4 grid of 2 x 4 x 4 cubes: N = 32, cube_dim 96.
GRID = (2, 4, 4)
N = 32
TINY = dict(patch_size=4, tubelet_size=2, hidden_size=32, num_layers=1, num_heads=4, mlp_dim=64)
TINY_DECODER = dict(decoder_hidden_size=16, decoder_num_layers=1, decoder_num_heads=2,
                    decoder_mlp_dim=32)


def _video(shape=VIDEO_SHAPE, seed: int = 0):
  return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


def _pretrain(**overrides):
  return models.build(ml_collections.ConfigDict(
      dict(dict(name='videomae_pretrain', **TINY, **TINY_DECODER, mask_ratio=0.75), **overrides)))


def _classifier(**overrides):
  return models.build(ml_collections.ConfigDict(
      dict(dict(name='videomae', num_classes=5, **TINY), **overrides)))


def _abstract(model, video):
  """Boxed init output as shapes, without computing it."""
  return jax.eval_shape(lambda: model.init({'params': jax.random.key(0),
                                            'masking': jax.random.key(1)}, video, train=False))


def _init(model, video, seed: int = 0):
  """Unboxed random variables shaped as model.init's (compiling the real random init costs
  seconds per parameter on CPU): LayerNorm scales 1, biases 0, other parameters normal with
  std 1 / sqrt(fan-in) (the mask token 0.02)."""
  rng = np.random.default_rng(seed)

  def fill(path, p):
    name = jax.tree_util.keystr(path)
    if name.endswith("['scale']"):
      return jnp.ones(p.shape, p.dtype)
    if name.endswith("['bias']"):
      return jnp.zeros(p.shape, p.dtype)
    fan_in = p.shape[0] if any(f"['{n}']" in name for n in ('query', 'key', 'value')) else (
        np.prod(p.shape[:-1]))
    std = 0.02 if 'mask_token' in name else fan_in ** -0.5
    return jnp.asarray(rng.normal(scale=std, size=p.shape), p.dtype)

  return jax.tree_util.tree_map_with_path(fill, nn.unbox(_abstract(model, video)))


@functools.cache
def _runner(decoder_mask_ratio: float = 0.0):
  """(model, variables, run) for the tiny pre-training model; run(video, mask or None, seed)
  is jitted once per kind of call (op-by-op dispatch compiles every primitive on CPU)."""
  model = _pretrain(decoder_mask_ratio=decoder_mask_ratio)
  variables = _init(model, _video())
  drawn = jax.jit(lambda x, r: model.apply(variables, x, train=False, rngs={'masking': r}))
  given = jax.jit(lambda x, m, r: model.apply(variables, x, train=False, mask=m,
                                              rngs={'masking': r}))

  def run(video, mask=None, seed: int = 0):
    rng = jax.random.key(seed)
    return drawn(video, rng) if mask is None else given(video, mask, rng)

  return model, variables, run


def _tube(seed: int, batch: int = 2, ratio: float = 0.75):
  return masking.tube_mask(jax.random.key(seed), batch, GRID, ratio)


def test_model_draws_masks_from_masking_rng():
  _, _, run = _runner()
  video = _video()
  out, again, other = run(video, seed=3), run(video, seed=3), run(video, seed=4)
  mask = np.asarray(out['mask'])
  assert (mask.reshape(2, 2, 16) == mask.reshape(2, 2, 16)[:, :1]).all()
  assert (mask.sum(1) == 2 * 12).all()
  np.testing.assert_array_equal(mask, again['mask'])
  assert not np.array_equal(mask, other['mask'])
  assert out['pred'].shape == out['target'].shape == (2, 24, 96)
  np.testing.assert_array_equal(out['pred_index'], np.nonzero(mask)[1].reshape(2, 24))
  np.testing.assert_array_equal(out['visible_index'], np.nonzero(~mask)[1].reshape(2, 8))


def test_encoder_ignores_masked_pixels_and_passed_mask_is_used():
  """pred depends on the masked cubes only through their positions: changing their pixels
  leaves pred unchanged (the encoder sees only visible cubes), changing a visible one does not."""
  _, _, run = _runner()
  video, mask = _video(), _tube(5)
  out = run(video, mask)
  np.testing.assert_array_equal(out['mask'], mask)
  cube_mask = np.asarray(mask).reshape(2, *GRID)
  pixel_mask = np.repeat(np.repeat(np.repeat(cube_mask, 2, 1), 4, 2), 4, 3)[..., None]
  noise = _video(seed=9) * 5
  changed_masked = run(jnp.where(pixel_mask, noise, video), mask)
  changed_visible = run(jnp.where(pixel_mask, video, noise), mask)
  np.testing.assert_allclose(changed_masked['pred'], out['pred'], atol=1e-6)
  assert not np.allclose(changed_masked['target'], out['target'])
  assert np.abs(changed_visible['pred'] - out['pred']).max() > 1e-3


def test_passed_mask_is_checked():
  model, variables, run = _runner()
  video = _video()
  bad = np.asarray(_tube(0)).copy()
  bad[0, np.argmin(bad[0])] = True  # One more masked cube in row 0.
  with pytest.raises(ValueError, match='every row must mask exactly 24'):
    model.apply(variables, video, train=False, mask=bad)
  with pytest.raises(ValueError, match=r'expected \(B, N\) = \(2, 32\)'):
    model.apply(variables, video, train=False, mask=np.zeros((2, 31), bool))
  with pytest.raises(ValueError, match='must be boolean'):
    model.apply(variables, video, train=False, mask=np.zeros((2, 32), np.int32))
  # Under jit the count cannot raise: the loss is NaN.
  assert np.isnan(run(video, bad)['loss']) and np.isfinite(run(video, _tube(0))['loss'])


def test_decoder_masking_reconstructs_the_documented_subset():
  """decoder_mask_ratio 0.5: K = M - round(0.5 M) = 12 of the M = 24 masked cubes, a random
  increasing subset of the masked indices, different per example, fixed by the rng."""
  model, _, run = _runner(0.5)
  video, mask = _video(), _tube(2)
  assert model.num_masked(GRID) == (24, 12)
  out = run(video, mask, 0)
  assert out['pred'].shape == out['target'].shape == (2, 12, 96)
  index = np.asarray(out['pred_index'])
  for row, masked in zip(index, np.asarray(mask)):
    assert (np.diff(row) > 0).all() and masked[row].all()
  assert not np.array_equal(index[0], index[1])
  np.testing.assert_array_equal(index, run(video, mask, 0)['pred_index'])
  assert not np.array_equal(index, run(video, mask, 1)['pred_index'])
  targets = videomae.cube_targets(video, 2, 4, videomae.IMAGENET_MEAN, videomae.IMAGENET_STD, True)
  np.testing.assert_allclose(out['target'], np.take_along_axis(targets, index[..., None], 1),
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(out['loss'], np.mean((out['pred'] - out['target']) ** 2), rtol=1e-6)
  assert _pretrain(decoder_mask_ratio=0.3).num_masked(GRID) == (24, 24 - 7)


def test_norm_pix_targets_and_layout():
  video = _video() * 0.3
  targets = np.asarray(videomae.cube_targets(video, 2, 4, videomae.IMAGENET_MEAN,
                                             videomae.IMAGENET_STD, True))
  per_channel = targets.reshape(2, N, 32, 3)  # t * p * p = 32 pixels of each of 3 channels.
  np.testing.assert_allclose(per_channel.mean(2), 0, atol=1e-5)
  np.testing.assert_allclose(per_channel.std(2, ddof=1), 1, atol=1e-4)
  raw = np.asarray(videomae.cube_targets(video, 2, 4, videomae.IMAGENET_MEAN,
                                         videomae.IMAGENET_STD, False))
  pixels = np.asarray(video) * np.array(videomae.IMAGENET_STD) + np.array(videomae.IMAGENET_MEAN)
  # Cube (time 1, row 2, column 3) is flat index 1 * 16 + 2 * 4 + 3; its layout is (t, h, w, C).
  np.testing.assert_allclose(raw[1, 27].reshape(2, 4, 4, 3), pixels[1, 2:4, 8:12, 12:16],
                             rtol=1e-6)
  np.testing.assert_allclose(videomae.unpatchify(raw, GRID, 2, 4), pixels, rtol=1e-6)


def test_sinusoid_table_is_videomae_s():
  table = videomae.sinusoid_table(10, 6)
  for pos in range(10):
    for j in range(6):
      angle = pos / np.power(10000, 2 * (j // 2) / 6)
      np.testing.assert_allclose(table[pos, j], np.sin(angle) if j % 2 == 0 else np.cos(angle),
                                 rtol=1e-6, atol=1e-7)


def test_loss_falls_and_grads_reach_mask_token():
  model, variables, _ = _runner()
  video, mask = _video(), _tube(0)
  tx = optax.sgd(0.1, momentum=0.9)

  @jax.jit
  def step(params, opt_state):
    loss, grads = jax.value_and_grad(
        lambda p: model.apply({'params': p}, video, train=True, mask=mask)['loss'])(params)
    updates, opt_state = tx.update(grads, opt_state)
    return optax.apply_updates(params, updates), opt_state, loss, grads

  params = variables['params']
  opt_state = tx.init(params)
  losses = []
  for i in range(16):
    params, opt_state, loss, grads = step(params, opt_state)
    losses.append(float(loss))
    if i == 0:
      assert np.abs(grads['mask_token']).max() > 0
      assert np.abs(grads['embedding']['proj']['kernel']).max() > 0
  assert np.isfinite(losses).all()
  assert losses[-1] < 0.8 * losses[0], losses


@pytest.mark.parametrize('use_mean_pooling', [True, False])
def test_classifier_takes_pretrain_encoder(use_mean_pooling):
  """Same `embedding`/`encoder` paths and shapes; the classifier runs on the pre-trained ones."""
  video = _video()
  pretrain = _init(_pretrain(encoder_norm=not use_mean_pooling), video)['params']
  classifier = _classifier(use_mean_pooling=use_mean_pooling)
  params = _init(classifier, video)['params']
  for name in ('embedding', 'encoder'):
    assert (jax.tree.map(np.shape, pretrain[name]) == jax.tree.map(np.shape, params[name]))
  params = dict(params, embedding=pretrain['embedding'], encoder=pretrain['encoder'])
  params['head'] = jax.tree.map(lambda x: x + 0.1, params['head'])
  logits = jax.jit(lambda p: classifier.apply({'params': p}, video, train=False))(params)
  assert logits.shape == (2, 5) and logits.dtype == jnp.float32
  assert ('fc_norm' in params) == use_mean_pooling
  assert ('norm' in params['encoder']) == (not use_mean_pooling)


def test_classifier_features_dropout_and_partitioning():
  video = _video()
  model = _classifier(num_classes=0, stochastic_depth=0.5, dropout_rate=0.1)
  boxed = _abstract(model, video)
  leaves = jax.tree.leaves(boxed, is_leaf=lambda x: isinstance(x, nn.LogicallyPartitioned))
  assert all(isinstance(x, nn.LogicallyPartitioned) for x in leaves)
  variables = _init(model, video)
  apply = jax.jit(lambda seed: (
      model.apply(variables, video, train=False),
      model.apply(variables, video, train=True, rngs={'dropout': jax.random.key(seed),
                                                      'drop_path': jax.random.key(seed + 1)})))
  features, train_a = apply(0)
  assert features.shape == (2, 32) and features.dtype == jnp.float32
  assert not np.allclose(train_a, features)
  np.testing.assert_array_equal(train_a, apply(0)[1])
  pretrain = _pretrain(dtype='bfloat16')
  boxed = _abstract(pretrain, video)
  leaves = jax.tree.leaves(boxed, is_leaf=lambda x: isinstance(x, nn.LogicallyPartitioned))
  assert all(isinstance(x, nn.LogicallyPartitioned) for x in leaves)
  assert {x.value.dtype for x in leaves} == {jnp.dtype(jnp.float32)}
  out = jax.jit(lambda v: pretrain.apply(v, video, train=False, rngs={
      'masking': jax.random.key(0)}))(_init(pretrain, video))
  assert out['loss'].dtype == out['pred'].dtype == jnp.float32 and np.isfinite(out['loss'])


def _two_layers(pretrain: bool):
  """(build(**fields), output) for the 2-layer classifier or pre-training model (2-layer
  decoder), with drop path on; output picks the numbers to compare."""
  fields = dict(num_layers=2, stochastic_depth=0.2)
  if pretrain:
    return (functools.partial(_pretrain, decoder_num_layers=2, **fields),
            lambda out: (out['pred'], out['pred_index']))
  return functools.partial(_classifier, **fields), None


def test_remat_keeps_loss_and_gradients():
  """Remat of the encoder and the decoder (the classifier builds the same encoder): one 8 x 8
  clip of 2 frames, 4 cubes of which 1 is visible; 2 encoder blocks with drop path, 1 decoder."""
  build = functools.partial(_pretrain, hidden_size=8, num_heads=2, mlp_dim=16, num_layers=2,
                            stochastic_depth=0.2, decoder_hidden_size=8,
                            decoder_mlp_dim=16, decoder_num_layers=1)
  video = _video((1, 2, 8, 8, 3))
  assert_remat_keeps_loss_and_gradients(build, _init(build(), video)['params'], video,
                                        lambda out: out['loss'])


@pytest.mark.parametrize('pretrain', [False, True])
def test_scanned_layers_equal_unrolled(pretrain):
  """Encoder (and decoder) blocks stacked by scan.stack: same outputs."""
  build, output = _two_layers(pretrain)
  video = _video()
  stacked = assert_scan_equals_unrolled(build, _init(build(), video)['params'], video, output)
  for name in ('encoder', 'decoder') if pretrain else ('encoder',):
    assert stacked[name]['blocks']['mlp']['fc1']['kernel'].shape[0] == 2


@pytest.mark.parametrize('overrides, message', [
    (dict(mask_ratio=1.0), r'mask_ratio=1.0 must be in \(0, 1\)'),
    (dict(mask_ratio=0.0), r'mask_ratio=0.0 must be in \(0, 1\)'),
    (dict(decoder_mask_ratio=1.0), r'decoder_mask_ratio=1.0 must be in \[0, 1\)'),
    (dict(mask_type='block'), "mask_type='block' is not supported"),
    (dict(hidden_size=30), 'hidden_size=30 is not divisible by config.model.num_heads=4'),
    (dict(decoder_hidden_size=15), 'decoder_hidden_size=15 is not divisible'),
    (dict(pixel_std=(1.0, 1.0)), 'need one entry per channel'),
    (dict(hidden_act='tanh'), "hidden_act='tanh' is not supported"),
])
def test_config_errors(overrides, message):
  with pytest.raises(ValueError, match=message):
    _pretrain(**overrides)


def test_shape_errors():
  model = _pretrain()
  with pytest.raises(ValueError, match='cannot be cut into cubes'):
    _init(model, _video((2, 5, 16, 16, 3)))
  with pytest.raises(ValueError, match='masks 2 of the 2 cubes'):
    _init(_pretrain(patch_size=16, mask_ratio=0.6), _video((1, 4, 16, 16, 3)))
  with pytest.raises(ValueError, match='cannot be cut into cubes'):
    _init(_classifier(), _video((2, 4, 18, 16, 3)))
  with pytest.raises(ValueError, match='num_classes=-1'):
    _classifier(num_classes=-1)
