"""ViViT Models 2-4, frame tokenizer and sizes: structure, factorised attention neighbourhoods."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType

from tests.helpers import load_config
from tests.models.test_encoder import drop_path_rates
from tests.models.test_layers import random_variables
from tests.models.test_vivit import PATCH, VIDEO_SHAPE, _model, _video, patchify, unpatchify
from vivit_jax.models import embed, encoder, layers, vivit

NT, NS = 2, 16  # Temporal indices and spatial positions of the tiny model's tubelets.
VARIANTS = ('spatio_temporal', 'factorised_encoder', 'factorised_self_attention',
            'factorised_dot_product')


def _gap_model(variant, **overrides):
  return _model(variant=variant, classifier='gap', **overrides)


def _apply(module, variables, x):
  """Jitted eval-mode `module.apply`: one compilation is faster than op-by-op dispatch."""
  return jax.jit(lambda v, y: module.apply(v, y, train=False))(variables, x)


def _boxed_leaves(model, video):
  abstract = jax.eval_shape(lambda: model.init(jax.random.key(0), video, train=False))
  return jax.tree.leaves(abstract, is_leaf=lambda x: isinstance(x, nn.Partitioned))


@pytest.mark.parametrize('tokenizer,patch', [('tubelet', PATCH), ('frame', (4, 4))])
@pytest.mark.parametrize('variant', VARIANTS)
def test_variant_builds(variant, tokenizer, patch):
  """(B, num_classes) float32 logits; every param partitioned; the variant's own modules."""
  classifier = 'gap' if vivit.ViViT.FACTORISATIONS[variant] else 'token'
  model, video = _model(variant=variant, classifier=classifier, tokenizer=tokenizer,
                        patch_size=patch, num_temporal_layers=3), _video()
  leaves = _boxed_leaves(model, video)
  assert leaves and all(isinstance(p, nn.Partitioned) and len(p.names) == p.value.ndim
                        for p in leaves)
  variables = random_variables(model, video, train=False, seed=0)
  params = variables['params']
  nt = 4 if tokenizer == 'frame' else NT
  if variant == 'factorised_encoder':
    assert len(params['spatial_encoder']) == 2 + 1 and len(params['temporal_encoder']) == 3 + 1
    assert params['spatial_pos_embedding']['embedding'].shape == (1, NS + 1, 32)
    assert params['temporal_pos_embedding']['embedding'].shape == (1, nt + 1, 32)
  else:
    assert params['pos_embedding']['embedding'].shape[1] == nt * NS + (classifier == 'token')
    block = params['encoder']['block_1']
    assert ('temporal_attn' in block) == (variant == 'factorised_self_attention')
  logits = _apply(model, variables, video)
  assert logits.shape == (2, 10) and logits.dtype == jnp.float32
  assert np.all(np.isfinite(logits)) and np.abs(logits).max() > 0.1


@pytest.mark.parametrize('variant', VARIANTS[2:])
def test_bfloat16_close_to_float32(variant):
  model, video = _gap_model(variant, dtype='bfloat16'), _video()
  assert {p.value.dtype for p in _boxed_leaves(model, video)} == {jnp.dtype(jnp.float32)}
  variables = random_variables(model, video, train=False, seed=0)
  logits, reference = _apply(model, variables, video), _apply(_gap_model(variant), variables, video)
  assert logits.dtype == jnp.float32
  np.testing.assert_allclose(logits, reference, rtol=0.1, atol=0.1 * np.abs(reference).max())


@pytest.mark.parametrize('variant', VARIANTS[2:])
def test_sharded_matches_unsharded(variant):
  """Params and activations over a 2x2x2 (data, fsdp, model) mesh: the tokens regrouped by
  frame and by position in Models 3 and 4 shard too, with the same logits."""
  model, video = _gap_model(variant), _video((4,) + VIDEO_SHAPE[1:])
  mesh = jax.make_mesh((2, 2, 2), ('data', 'fsdp', 'model'), axis_types=(AxisType.Auto,) * 3)
  rules = load_config().sharding_rules
  abstract = jax.eval_shape(lambda: model.init(jax.random.key(0), video, train=False))
  variables = random_variables(model, video, train=False, seed=0)
  sharded = jax.device_put(variables, nn.logical_to_mesh_sharding(
      nn.get_partition_spec(abstract), mesh, rules))
  with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
    logits = _apply(model, sharded, video)
  assert len(logits.sharding.device_set) == 8
  np.testing.assert_allclose(logits, _apply(model, variables, video), rtol=1e-5, atol=1e-5)


def _permuted_videos(video):
  """video, then its tubelets permuted: (a) one spatial permutation for every temporal index,
  (b) an independent spatial permutation per temporal index, (c) two tubelets at different
  temporal indices and spatial positions swapped. Batched as (4 * B, T, H, W, C)."""
  tubelets = patchify(video, PATCH)
  grid = tubelets.reshape((2, NT, NS) + tubelets.shape[4:])
  rng = np.random.default_rng(1)
  same = grid[:, :, rng.permutation(NS)]
  independent = np.stack([grid[:, t, rng.permutation(NS)] for t in range(NT)], axis=1)
  swapped = grid.copy()
  swapped[:, 0, 0], swapped[:, 1, 5] = grid[:, 1, 5], grid[:, 0, 0]
  return np.concatenate([np.asarray(video)] + [unpatchify(g.reshape(tubelets.shape))
                                               for g in (same, independent, swapped)])


# Logits unchanged by the permutations (a), (b), (c) of `_permuted_videos`, without position
# embeddings: Model 1 sees a set of tubelets; Model 2 a sequence of per-index sets; Models 3 and 4
# mix tokens only within a temporal index or a spatial position.
@pytest.mark.parametrize('variant,invariant', [
    ('spatio_temporal', (True, True, True)),
    ('factorised_encoder', (True, True, False)),
    ('factorised_self_attention', (True, False, False)),
    ('factorised_dot_product', (True, False, False)),
])
def test_attention_neighbourhoods(variant, invariant):
  model, video = _gap_model(variant), _video()
  variables = random_variables(model, video, train=False, seed=0)
  params = {k: {'embedding': jnp.zeros_like(v['embedding'])} if k.endswith('pos_embedding') else v
            for k, v in variables['params'].items()}
  logits = np.asarray(_apply(model, {'params': params}, _permuted_videos(video)))
  logits = logits.reshape(4, 2, -1)
  changes = [np.abs(logits[i] - logits[0]).max() for i in (1, 2, 3)]
  assert [c < 1e-5 for c in changes] == list(invariant), changes
  assert all(c > 1e-3 for c, same in zip(changes, invariant) if not same)


SPEC = encoder.BlockSpec(num_heads=4, mlp_dim=64, attention_impl='xla')


def _block(factorisation, num_frames=NT):
  return encoder.EncoderBlock(spec=SPEC, factorisation=factorisation, num_frames=num_frames)


def test_model3_block_starts_as_spatial_block():
  """With the temporal output projection at zero, a Model 3 block is a ViT block applied to
  each frame's tokens; any other temporal out kernel changes it."""
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, NT * 3, 32)), jnp.float32)
  params = random_variables(_block('self_attention'), x, train=False, seed=1)['params']
  params['temporal_attn']['out'] = jax.tree.map(jnp.zeros_like, params['temporal_attn']['out'])
  spatial = {k: v for k, v in params.items() if 'temporal' not in k}
  expected = layers.within(lambda y: _apply(_block(None), {'params': spatial}, y), 'space', NT, x)
  out = _apply(_block('self_attention'), {'params': params}, x)
  np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
  temporal = params['temporal_attn']
  temporal['out']['kernel'] = temporal['query']['kernel'].transpose(1, 2, 0)
  out = _apply(_block('self_attention'), {'params': params}, x)
  assert np.abs(out - expected).max() > 1e-2


def test_model3_zero_initialises_only_the_temporal_out_projection():
  attention = layers.Attention(num_heads=4, dropout_rate=0.0, attention_impl='xla',
                               dtype=jnp.float32, param_dtype=jnp.float32, zero_init_out=True)
  params = nn.unbox(attention.init(jax.random.key(0), jnp.ones((1, 3, 32)), train=False))
  params = params['params']
  assert not np.any(params['out']['kernel']) and not np.any(params['out']['bias'])
  assert all(np.std(params[n]['kernel']) > 0.05 for n in ('query', 'key', 'value'))
  zero_out = {}

  def record(next_fun, args, kwargs, context):
    if isinstance(context.module, layers.Attention):
      zero_out[context.module.name] = context.module.zero_init_out
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(record):
    _boxed_leaves(_gap_model('factorised_self_attention'), _video())
  assert zero_out == {'attn': False, 'temporal_attn': True}


def test_model3_stochastic_depth_on_every_residual():
  module = encoder.Encoder(spec=SPEC, num_layers=3, stochastic_depth=0.2,
                           factorisation='self_attention', num_frames=NT)
  np.testing.assert_allclose(drop_path_rates(module, jnp.ones((2, NT * 3, 32))),
                             [0.0] * 3 + [0.1] * 3 + [0.2] * 3)


def _masked_reference_attention(params, x, num_frames):
  """float64 Model 4 attention: heads 0, 1 within frames, heads 2, 3 within positions."""
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
  x = np.asarray(x, np.float64)
  q, k, v = (np.einsum('bnd,dhk->bnhk', x, p[n]['kernel']) + p[n]['bias']
             for n in ('query', 'key', 'value'))
  n = x.shape[1]
  frame, position = np.arange(n) // (n // num_frames), np.arange(n) % (n // num_frames)
  same = [frame[:, None] == frame[None], position[:, None] == position[None]]
  mask = np.stack([same[0], same[0], same[1], same[1]])  # (heads, N, N).
  logits = np.einsum('bqhd,bkhd->bhqk', q, k) / np.sqrt(q.shape[-1])
  weights = np.where(mask, np.exp(logits - logits.max(-1, keepdims=True)), 0)
  weights /= weights.sum(-1, keepdims=True)
  out = np.einsum('bhqk,bkhd->bqhd', weights, v)
  return np.einsum('bqhd,hdo->bqo', out, p['out']['kernel']) + p['out']['bias']


def test_factorised_dot_product_attention_matches_reference():
  attention = layers.FactorisedDotProductAttention(
      num_heads=4, dropout_rate=1e-7, attention_impl='xla', dtype=jnp.float32,
      param_dtype=jnp.float32, num_frames=3)
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 3 * 5, 32)), jnp.float32)
  variables = random_variables(attention, x, train=False, seed=1)
  expected = _masked_reference_attention(variables['params'], x, 3)
  np.testing.assert_allclose(_apply(attention, variables, x), expected,
                             rtol=1e-4, atol=1e-4)
  dropout_path = attention.apply(variables, x, train=True, rngs={'dropout': jax.random.key(0)})
  np.testing.assert_allclose(dropout_path, expected, rtol=1e-4, atol=1e-4)


def test_frame_tokenizer_is_tubelet_of_one_frame():
  video = _video()
  frame, tubelet = _model(tokenizer='frame', patch_size=(4, 4)), _model(patch_size=(1, 4, 4))
  variables = random_variables(frame, video, train=False, seed=0)
  shapes = lambda v: jax.tree.map(lambda a: a.shape, v)
  assert shapes(variables) == shapes(random_variables(tubelet, video, train=False, seed=0))
  np.testing.assert_array_equal(_apply(frame, variables, video),
                                _apply(tubelet, variables, video))
  # Each frame's tokens are its 2D patch embeddings.
  proj = variables['params']['embedding']
  patches = embed.TubeletEmbed((4, 4), 32, jnp.float32, jnp.float32).apply(
      {'params': {'proj': {'kernel': proj['proj']['kernel'][0], 'bias': proj['proj']['bias']}}},
      video.reshape((-1,) + video.shape[2:]))
  tokens = embed.TubeletEmbed((1, 4, 4), 32, jnp.float32, jnp.float32).apply(
      {'params': proj}, video)
  np.testing.assert_allclose(tokens, patches.reshape(tokens.shape), rtol=1e-6, atol=1e-6)


def test_size_preset():
  assert vivit.size_preset('B') == dict(hidden_size=768, num_layers=12, num_heads=12,
                                        mlp_dim=3072)
  assert {n: vivit.size_preset(n)['hidden_size'] for n in vivit.SIZES} == dict(
      Ti=192, S=384, B=768, L=1024, H=1280)
  with pytest.raises(ValueError, match="Unknown ViViT size 'XL'.*Ti, S, B, L, H"):
    vivit.size_preset('XL')


@pytest.mark.parametrize('overrides,match', [
    (dict(variant='factorised_self_attention'), "classifier='gap'"),
    (dict(variant='factorised_dot_product'), "classifier='gap'"),
    (dict(tokenizer='pixel'), "tokenizer='pixel'.*supported: tubelet, frame"),
    (dict(tokenizer='frame', patch_size=(2, 4, 4)), r'patch_size=\(2, 4, 4\).*\(h, w\)'),
    (dict(patch_size=(4, 4)), r'patch_size=\(4, 4\).*\(t, h, w\)'),
])
def test_bad_config_raises_at_build(overrides, match):
  with pytest.raises(ValueError, match=match):
    _model(**overrides)


def test_model4_needs_even_num_heads():
  model = _gap_model('factorised_dot_product', hidden_size=24, num_heads=3)
  with pytest.raises(ValueError, match='config.model.num_heads=3 must be even'):
    _boxed_leaves(model, _video())
