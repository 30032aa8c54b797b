"""ViViT Model 1 and the registry: shapes, dtypes, sharding names, tokenisation, joint attention."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, PartitionSpec

from tests.helpers import load_config, tiny_config
from tests.models.test_layers import random_variables
from vivit_jax import models
from vivit_jax.models import embed, encoder

VIDEO_SHAPE = (2, 4, 16, 16, 3)
PATCH = (2, 4, 4)
NUM_TUBELETS = (4 // 2) * (16 // 4) * (16 // 4)


def _video(shape=VIDEO_SHAPE, seed: int = 0):
  return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


def _model(**overrides):
  """The tiny test config's ViViT, without stochastic depth unless overridden."""
  config = tiny_config().model
  config.update(dict(dict(patch_size=PATCH, stochastic_depth=0.0), **overrides))
  return models.build(config)


def _variables(classifier: str = 'token'):
  """Random parameters for `_model(classifier=classifier)` on `_video()`."""
  return random_variables(_model(classifier=classifier), _video(), train=False, seed=0)


def _abstract_init(model, video):
  """Boxed init output as shapes, without computing it."""
  return jax.eval_shape(lambda: model.init(jax.random.key(0), video, train=False))


def patchify(video, patch):
  """(B, T, H, W, C) -> tubelets (B, nt, nh, nw, t, h, w, C)."""
  b, t, h, w, c = video.shape
  pt, ph, pw = patch
  x = np.asarray(video).reshape(b, t // pt, pt, h // ph, ph, w // pw, pw, c)
  return x.transpose(0, 1, 3, 5, 2, 4, 6, 7)


def unpatchify(tubelets):
  """Inverse of `patchify`: (B, nt, nh, nw, t, h, w, C) -> (B, T, H, W, C)."""
  b, nt, nh, nw, pt, ph, pw, c = tubelets.shape
  return tubelets.transpose(0, 1, 4, 2, 5, 3, 6, 7).reshape(b, nt * pt, nh * ph, nw * pw, c)


def test_init_conventions():
  """A real init of a bfloat16-compute model: float32 params, zero head, ViT initialisers."""
  model = _model(dtype='bfloat16', num_layers=1)
  params = nn.unbox(model.init(jax.random.key(0), _video(), train=False))['params']
  assert {p.dtype for p in jax.tree.leaves(params)} == {jnp.dtype(jnp.float32)}
  assert not np.any(params['head']['kernel']) and not np.any(params['head']['bias'])
  assert not np.any(params['cls']['token'])
  np.testing.assert_array_equal(params['encoder']['norm']['scale'], 1.0)
  assert abs(np.std(params['pos_embedding']['embedding']) - 0.02) < 0.002
  query = params['encoder']['block_0']['attn']['query']['kernel']  # Xavier over (D, H * d).
  assert abs(np.std(query) - np.sqrt(2 / (32 + 32))) < 0.02


@pytest.mark.parametrize('classifier,dtype', [('token', 'float32'), ('gap', 'float32'),
                                              ('token', 'bfloat16')])
def test_output_shape_and_dtypes(classifier, dtype):
  video, variables = _video(), _variables(classifier)
  logits = _model(classifier=classifier, dtype=dtype).apply(variables, video, train=False)
  assert logits.shape == (2, tiny_config().model.num_classes) and logits.dtype == jnp.float32
  reference = _model(classifier=classifier).apply(variables, video, train=False)
  assert np.abs(reference).max() > 0.1
  np.testing.assert_allclose(logits, reference, rtol=0.1, atol=0.1 * np.abs(reference).max())


def test_train_mode_uses_rng_streams():
  video, variables = _video(), _variables()
  model = _model(dropout_rate=0.1, attention_dropout_rate=0.1, stochastic_depth=0.5)
  run = lambda seed: model.apply(variables, video, train=True,
                                 rngs={'dropout': jax.random.key(seed),
                                       'drop_path': jax.random.key(seed + 1)})
  assert np.abs(run(0) - run(2)).max() > 1e-3
  np.testing.assert_array_equal(run(0), run(0))


def test_parameters_are_logically_partitioned():
  model = _model()
  abstract = _abstract_init(model, _video())
  leaves = jax.tree.leaves(abstract, is_leaf=lambda x: isinstance(x, nn.Partitioned))
  assert leaves and all(isinstance(p, nn.Partitioned) for p in leaves)
  assert all(len(p.names) == p.value.ndim for p in leaves)
  specs = nn.get_partition_spec(abstract)['params']
  assert specs['head']['kernel'] == PartitionSpec('embed', 'classes')
  assert specs['embedding']['proj']['kernel'] == PartitionSpec(None, None, None, None, 'embed')
  block = specs['encoder']['block_0']
  assert block['attn']['query']['kernel'] == PartitionSpec('embed', 'heads', 'kv')
  assert block['attn']['out']['kernel'] == PartitionSpec('heads', 'kv', 'embed')
  assert block['mlp']['fc2']['kernel'] == PartitionSpec('mlp', 'embed')
  assert block['norm_attn']['scale'] == PartitionSpec('embed')
  unboxed = jax.tree.leaves(nn.unbox(abstract))
  assert len(unboxed) == len(leaves)
  assert all(isinstance(x, jax.ShapeDtypeStruct) for x in unboxed)


def test_sharded_matches_unsharded():
  """Params and activations sharded over a 2x2x2 (data, fsdp, model) mesh: same logits."""
  model, video, variables = _model(), _video((4,) + VIDEO_SHAPE[1:]), _variables()
  mesh = jax.make_mesh((2, 2, 2), ('data', 'fsdp', 'model'), axis_types=(AxisType.Auto,) * 3)
  rules = load_config().sharding_rules
  specs = nn.get_partition_spec(_abstract_init(model, video))
  shardings = nn.logical_to_mesh_sharding(specs, mesh, rules)
  sharded = jax.device_put(variables, shardings)
  fc1 = sharded['params']['encoder']['block_0']['mlp']['fc1']['kernel']
  assert fc1.sharding.spec == PartitionSpec('fsdp', 'model')
  with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
    logits = jax.jit(lambda v, x: model.apply(v, x, train=False))(sharded, video)
  np.testing.assert_allclose(logits, model.apply(variables, video, train=False),
                             rtol=1e-5, atol=1e-5)


def test_tubelet_embed_matches_patchify_matmul():
  patch, video = (2, 4, 8), _video()
  tubelet = embed.TubeletEmbed(patch, 6, jnp.float32, jnp.float32)
  variables = random_variables(tubelet, video, seed=0)
  kernel = np.asarray(variables['params']['proj']['kernel'])
  tubelets = patchify(video, patch)
  expected = (tubelets.reshape(tubelets.shape[:4] + (-1,)) @ kernel.reshape(-1, 6)
              + np.asarray(variables['params']['proj']['bias']))
  out = tubelet.apply(variables, video)
  assert out.shape == (2, 2, 4, 2, 6)
  np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('classifier,num_tokens', [('token', NUM_TUBELETS + 1),
                                                   ('gap', NUM_TUBELETS)])
def test_token_count(classifier, num_tokens):
  model, video = _model(classifier=classifier), _video()
  _, state = model.apply(_variables(classifier), video, train=False,
                         capture_intermediates=lambda m, _: isinstance(m, encoder.Encoder))
  assert state['intermediates']['encoder']['__call__'][0].shape == (2, num_tokens, 32)


def test_joint_attention_is_invariant_to_tubelet_permutation():
  """Model 1 + GAP without position embeddings sees a set of tubelets: their order is moot."""
  model, video, variables = _model(classifier='gap'), _video(), _variables('gap')
  pos = variables['params']['pos_embedding']['embedding']
  tubelets = patchify(video, PATCH)
  perm = np.random.default_rng(1).permutation(NUM_TUBELETS)
  shuffled = unpatchify(tubelets.reshape((2, NUM_TUBELETS) + tubelets.shape[4:])[:, perm]
                        .reshape(tubelets.shape))
  assert np.abs(shuffled - np.asarray(video)).max() > 1  # The tubelets really move.

  def logits(pos_embedding, x):
    variables['params']['pos_embedding']['embedding'] = pos_embedding
    return model.apply(variables, x, train=False)

  no_pos = jnp.zeros_like(pos)
  assert np.abs(logits(no_pos, shuffled) - logits(no_pos, video)).max() < 1e-5
  assert np.abs(logits(pos, shuffled) - logits(pos, video)).max() > 1e-3


def test_build_default_config():
  config = load_config()
  model = models.build(config.model)
  assert model.variant == 'spatio_temporal' and model.patch_size == tuple(config.model.patch_size)
  assert model.dtype == jnp.float32
  ds = config.dataset
  video = jnp.zeros((1, ds.num_frames, ds.crop_size, ds.crop_size, 3))
  abstract = _abstract_init(model, video)
  t, h, w = config.model.patch_size
  tokens = (ds.num_frames // t) * (ds.crop_size // h) * (ds.crop_size // w) + 1  # + CLS.
  assert nn.unbox(abstract)['params']['pos_embedding']['embedding'].shape == (
      1, tokens, config.model.hidden_size)


@pytest.mark.parametrize('field,value,match', [
    ('name', 'nope', "Unknown model 'nope'.*available: vivit"),
    ('foo', 1, 'config.model.foo is not a field of vivit'),
    ('variant', 'nope', "variant='nope' is not supported by vivit; supported: spatio_temporal"),
    ('classifier', 'max', "classifier='max'"),
    ('attention_impl', 'flash', "attention_impl='flash'"),
    ('dtype', 'float33', "dtype='float33'"),
])
def test_build_rejects_bad_config(field, value, match):
  config = load_config().model
  config[field] = value
  with pytest.raises(ValueError, match=match):
    models.build(config)


def test_build_rejects_missing_field():
  config = load_config().model
  del config['variant']
  with pytest.raises(ValueError, match='config.model.variant'):
    models.build(config)


def test_indivisible_patch_size_raises():
  with pytest.raises(ValueError, match=r'patch_size=\(3, 4, 4\)'):
    _model(patch_size=(3, 4, 4)).init(jax.random.key(0), _video(), train=False)
