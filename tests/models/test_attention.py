"""Attention kernels: which one runs where, and each equals plain softmax attention in outputs
and gradients (Pallas kernels in interpret mode, cuDNN's padding through its XLA twin)."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vivit_jax.models import attention

BF16, F32 = jnp.bfloat16, jnp.float32


def _choose(impl, platform, dtype=BF16, head_dim=64, q_length=3137, kv_length=None,
            dropout=False):
  return attention.choose_kernel(impl, platform=platform, dtype=dtype, head_dim=head_dim,
                                 q_length=q_length, kv_length=kv_length or q_length,
                                 dropout=dropout)


@pytest.mark.parametrize('platform, expected', [('cuda', 'cudnn'), ('tpu', 'splash'),
                                                ('cpu', 'chunked'), ('rocm', 'chunked')])
def test_auto_picks_the_flash_kernel_of_the_platform(platform, expected):
  assert _choose('auto', platform) == expected


@pytest.mark.parametrize('platform, kwargs', [
    ('cuda', dict(dtype=F32)),  # cuDNN needs 16-bit inputs.
    ('cuda', dict(head_dim=4)),  # Tiny heads.
    ('cuda', dict(head_dim=256)),
    ('cuda', dict(dropout=True)),  # No flash kernel drops attention weights.
    ('tpu', dict(dropout=True)),
    ('tpu', dict(head_dim=4)),
    ('tpu', dict(q_length=16)),  # ViViT's time attention: too short for a 128-token block.
])
def test_auto_falls_back_to_chunked_where_no_kernel_fits(platform, kwargs):
  assert _choose('auto', platform, **kwargs) == 'chunked'


@pytest.mark.parametrize('impl, platform, kwargs, reason', [
    ('cudnn', 'cpu', {}, 'runs on GPU (CUDA) only and this step is compiled for cpu'),
    ('cudnn', 'tpu', {}, 'runs on GPU (CUDA) only'),
    ('cudnn', 'cuda', dict(dtype=F32), "config.model.dtype='bfloat16'"),
    ('cudnn', 'cuda', dict(head_dim=12), 'head_dim (hidden_size / num_heads) % 8 == 0'),
    ('cudnn', 'cuda', dict(dropout=True), 'attention_dropout_rate=0'),
    ('pallas', 'cpu', {}, 'runs on GPU (CUDA) only'),
    ('pallas', 'tpu', dict(head_dim=8), 'head_dim (hidden_size / num_heads) >= 16'),
    ('pallas', 'cuda', dict(kv_length=50), 'as many queries as keys'),
])
def test_explicit_kernel_that_cannot_run_names_reason_and_fix(impl, platform, kwargs, reason):
  with pytest.raises(ValueError, match=r"attention_impl='%s' cannot run: .*" % impl) as error:
    _choose(impl, platform, **kwargs)
  assert reason in str(error.value)


def test_explicit_kernels_where_they_run():
  assert _choose('cudnn', 'cuda') == 'cudnn'
  assert _choose('pallas', 'cuda') == 'triton'
  assert _choose('pallas', 'tpu', q_length=16) == 'splash'  # Asked for: padded, but runs.
  assert {_choose(impl, p) for impl in ('xla', 'chunked') for p in ('cpu', 'cuda', 'tpu')} == {
      'xla', 'chunked'}
  with pytest.raises(ValueError, match="attention_impl='flash' is not one of auto, xla"):
    _choose('flash', 'cuda')


def test_platform_follows_compiling_for_then_the_default_backend():
  assert attention.platform_of(jax.devices('cpu')) == 'cpu'
  assert attention.target_platform() == 'cpu'
  with attention.compiling_for('tpu'):
    assert attention.target_platform() == 'tpu'
    with attention.compiling_for('cuda'):
      assert attention.target_platform() == 'cuda'
    assert attention.target_platform() == 'tpu'
  assert attention.target_platform() == 'cpu'


def _qkv(n, n_kv=None, batch=2, heads=2, head_dim=16):
  keys = jax.random.split(jax.random.key(n * 1000 + (n_kv or n)), 4)
  q = jax.random.normal(keys[0], (batch, n, heads, head_dim))
  k, v = (jax.random.normal(key, (batch, n_kv or n, heads, head_dim)) for key in keys[1:3])
  cotangent = jax.random.normal(keys[3], q.shape)
  return (q, k, v), cotangent


def _outputs_and_grads(fn, qkv, cotangent):
  def loss(*args):
    return (fn(*args) * cotangent).sum()
  return (fn(*qkv),) + jax.grad(loss, argnums=(0, 1, 2))(*qkv)


def _assert_equals_plain_attention(kernel, n, n_kv=None, atol=1e-5):
  qkv, cotangent = _qkv(n, n_kv)
  got = _outputs_and_grads(kernel, qkv, cotangent)
  want = _outputs_and_grads(attention.xla_attention, qkv, cotangent)
  for name, a, b in zip(('out', 'dq', 'dk', 'dv'), got, want):
    assert a.shape == b.shape, name
    np.testing.assert_allclose(a, b, atol=atol, rtol=0, err_msg=name)


# 197 tokens: 196 patches and a CLS token (odd); 196: no CLS token (even).
@pytest.mark.parametrize('n, n_kv', [(197, None), (37, 13)])
def test_chunked_equals_plain_attention(n, n_kv):
  _assert_equals_plain_attention(functools.partial(attention.chunked_attention, chunk=64),
                                 n, n_kv)


@pytest.mark.parametrize('n, n_kv', [(197, None), (9, 13)])
def test_cudnn_padding_equals_plain_attention(n, n_kv):
  """The cuDNN kernel's padding (even length, key-length mask) through jax's XLA twin."""
  _assert_equals_plain_attention(
      functools.partial(attention.padded_attention, implementation='xla'), n, n_kv)


@pytest.mark.parametrize('n, n_kv', [(197, None), (130, 70)])
def test_splash_equals_plain_attention(n, n_kv):
  _assert_equals_plain_attention(
      functools.partial(attention.splash_attention, interpret=True), n, n_kv)


@pytest.mark.parametrize('n', [197])
def test_triton_equals_plain_attention(n):
  _assert_equals_plain_attention(
      functools.partial(attention.triton_attention, interpret=True), n)


def test_chunked_dropout_is_unbiased_and_differs_between_chunks():
  """Dropped weights are rescaled by 1 / (1 - rate): with v = 1 every output averages 1; each
  chunk of queries draws its own mask."""
  q = jnp.zeros((1, 256, 1, 8))  # Identical queries: uniform weights over the keys.
  k, v = jnp.zeros((1, 512, 1, 8)), jnp.ones((1, 512, 1, 8))
  out = attention.chunked_attention(q, k, v, chunk=64, dropout_rate=0.5,
                                    dropout_rng=jax.random.key(0))
  assert abs(float(out.mean()) - 1.0) < 0.02
  assert float(out.std()) > 0.01  # Weights were dropped.
  chunks = np.asarray(out[0, :, 0, 0]).reshape(4, 64)
  assert len({c.tobytes() for c in chunks}) == 4
  no_dropout = attention.chunked_attention(q, k, v, chunk=64)
  np.testing.assert_allclose(no_dropout, 1.0, atol=1e-6)


def test_attend_runs_chosen_kernel_on_cpu():
  qkv, _ = _qkv(600, batch=1)  # Longer than CHUNK: the chunked kernel with two chunks.
  np.testing.assert_allclose(attention.attend(*qkv, impl='auto'),
                             attention.xla_attention(*qkv), atol=1e-5, rtol=0)
  with pytest.raises(ValueError, match='compiled for cpu'):
    attention.attend(*qkv, impl='cudnn')
