"""Shared layers against float64 numpy references: attention, MLP, DropPath; q/k/v biases and the
classifier head."""
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vivit_jax.models import layers


def random_variables(module: nn.Module, *args, seed: int, scale: float = 0.3, **kwargs):
  """Unboxed variables of `module.init(key, *args, **kwargs)` filled with normal(0, scale) noise.

  Only shapes are traced: compiling the real random init costs seconds per parameter on CPU.
  """
  rng = np.random.default_rng(seed)
  abstract = jax.eval_shape(lambda: module.init(jax.random.key(0), *args, **kwargs))
  return jax.tree.map(lambda p: jnp.asarray(rng.normal(scale=scale, size=p.shape), p.dtype),
                      nn.unbox(abstract))


def _attention(rate: float = 0.0, impl: str = 'xla', dtype=jnp.float32):
  return layers.Attention(num_heads=4, dropout_rate=rate, attention_impl=impl, dtype=dtype,
                          param_dtype=jnp.float32)


def _reference_attention(variables, x):
  """softmax(q k^T / sqrt(d)) v and the out projection, in float64."""
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), variables['params'])
  x = np.asarray(x, np.float64)
  q, k, v = (np.einsum('bnd,dhk->bnhk', x, p[n]['kernel']) + p[n]['bias']
             for n in ('query', 'key', 'value'))
  logits = np.einsum('bqhd,bkhd->bhqk', q, k) / np.sqrt(q.shape[-1])
  weights = np.exp(logits - logits.max(-1, keepdims=True))
  weights /= weights.sum(-1, keepdims=True)
  out = np.einsum('bhqk,bkhd->bqhd', weights, v)
  return np.einsum('bqhd,hdo->bqo', out, p['out']['kernel']) + p['out']['bias']


@pytest.fixture(scope='module')
def attention_case():
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 10, 32)), jnp.float32)
  variables = random_variables(_attention(), x, train=False, seed=1)
  return x, variables, _reference_attention(variables, x)


def test_attention_matches_reference(attention_case):
  x, variables, expected = attention_case
  out = _attention().apply(variables, x, train=False)
  np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


def test_attention_dropout_path(attention_case):
  x, variables, expected = attention_case
  # Eval ignores the rate; a negligible rate in training runs the explicit path: same numbers.
  np.testing.assert_allclose(_attention(0.5).apply(variables, x, train=False), expected,
                             rtol=1e-4, atol=1e-4)
  explicit = _attention(1e-7).apply(variables, x, train=True, rngs={'dropout': jax.random.key(0)})
  np.testing.assert_allclose(explicit, expected, rtol=1e-4, atol=1e-4)
  dropped = [_attention(0.5).apply(variables, x, train=True, rngs={'dropout': jax.random.key(s)})
             for s in (0, 1)]
  assert np.abs(dropped[0] - expected).max() > 1e-2
  assert np.abs(dropped[0] - dropped[1]).max() > 1e-2


def test_attention_bfloat16_close_to_float32(attention_case):
  x, variables, expected = attention_case
  out = _attention(dtype=jnp.bfloat16).apply(variables, x, train=False)
  assert out.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(out, np.float32), expected, rtol=0.05, atol=0.05)


def test_cudnn_on_cpu_names_the_fix():
  """Each kernel's conditions are tested in test_attention; the module passes them through."""
  x = jnp.zeros((1, 4, 32), jnp.bfloat16)
  with pytest.raises(ValueError, match="attention_impl='cudnn' cannot run: .* compiled for cpu"):
    _attention(impl='cudnn', dtype=jnp.bfloat16).init(jax.random.key(0), x, train=False)


def test_mlp_matches_reference():
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 5, 8)), jnp.float32)
  mlp = layers.MlpBlock(mlp_dim=16, dropout_rate=0.0, dtype=jnp.float32, param_dtype=jnp.float32)
  variables = random_variables(mlp, x, train=False, seed=2)
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), variables['params'])
  h = np.asarray(x, np.float64) @ p['fc1']['kernel'] + p['fc1']['bias']
  h = 0.5 * h * (1 + np.vectorize(math.erf)(h / math.sqrt(2)))  # Exact GELU.
  expected = h @ p['fc2']['kernel'] + p['fc2']['bias']
  np.testing.assert_allclose(mlp.apply(variables, x, train=False), expected, rtol=1e-5, atol=1e-5)


def test_drop_path():
  rate, n = 0.25, 20000
  x = jnp.broadcast_to(jnp.arange(1.0, 13.0).reshape(3, 4), (n, 3, 4))
  drop_path = layers.DropPath(rate)
  np.testing.assert_array_equal(drop_path.apply({}, x, train=False), x)
  y = np.asarray(drop_path.apply({}, x, train=True, rngs={'drop_path': jax.random.key(0)}))
  scale = (y / np.asarray(x)).reshape(n, -1)
  np.testing.assert_allclose(scale, scale[:, :1].repeat(12, axis=1))  # Whole examples.
  kept = scale[:, 0] > 0
  np.testing.assert_allclose(scale[kept, 0], 1 / (1 - rate), rtol=1e-6)
  assert abs(kept.mean() - (1 - rate)) < 0.02
  np.testing.assert_allclose(y.mean(axis=0), x[0], rtol=0.03)


def test_auto_attention_equals_xla(attention_case):
  x, variables, expected = attention_case
  np.testing.assert_array_equal(_attention(impl='auto').apply(variables, x, train=False),
                                _attention(impl='xla').apply(variables, x, train=False))


@pytest.mark.parametrize('qkv_bias', list(layers.QKV_BIASES))
def test_qkv_bias_names_the_projections_with_a_bias(qkv_bias):
  attention = layers.Attention(num_heads=2, dropout_rate=0.0, attention_impl='xla',
                               dtype=jnp.float32, param_dtype=jnp.float32, qkv_bias=qkv_bias)
  params = nn.unbox(jax.eval_shape(lambda: attention.init(
      jax.random.key(0), jnp.ones((1, 3, 8)), train=False)))['params']
  assert [n for n in ('query', 'key', 'value') if 'bias' in params[n]] == list(
      layers.QKV_BIASES[qkv_bias])
  assert 'bias' in params['out']


def test_classifier_head_zero_init_and_features_without_classes():
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 8)), jnp.bfloat16)

  class Head(nn.Module):
    num_classes: int

    @nn.compact
    def __call__(self, features):
      return layers.classifier_head(features, self.num_classes, jnp.bfloat16, jnp.float32)

  variables = nn.unbox(Head(3).init(jax.random.key(0), x))
  head = variables['params']['head']
  assert head['kernel'].shape == (8, 3) and head['kernel'].dtype == jnp.float32
  assert not np.any(head['kernel']) and not np.any(head['bias'])
  logits = Head(3).apply(jax.tree.map(lambda a: a + 0.5, variables), x)
  assert logits.shape == (2, 3) and logits.dtype == jnp.float32 and np.abs(logits).max() > 0.1
  assert Head(0).init(jax.random.key(0), x) == {}
  features = Head(0).apply({}, x)
  assert features.dtype == jnp.float32
  np.testing.assert_array_equal(features, np.asarray(x, np.float32))
