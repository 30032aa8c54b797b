"""Softmax attention on q, k, v (B, N, heads, head_dim) with a kernel per accelerator.

`config.model.attention_impl` (IMPLS) names what to run; `choose_kernel` turns it into a KERNEL
for the platform the step is compiled for, the sequence and the dtype:

  kernel     runs on    what
  'cudnn'    cuda       cuDNN flash attention (jax.nn.dot_product_attention), tokens padded to
                        an even count with a key-length mask (JAX refuses odd lengths in training)
  'splash'   tpu        Pallas splash attention, padded to its block with segment ids
  'triton'   cuda       Pallas GPU (Triton) flash attention, padded to its block with segment ids
  'chunked'  any        softmax over chunks of CHUNK queries at a time, each chunk recomputed in
                        the backward pass (jax.checkpoint): never all N x N weights at once; one
                        chunk (N <= CHUNK) is plain attention; supports attention dropout
  'xla'      any        plain attention: the (B, heads, N, N) weights in memory

  attention_impl  cuda                      tpu                       elsewhere
  'auto'          cudnn, else chunked       splash (N >= SPLASH_MIN), chunked
                                            else chunked
  'cudnn'         cudnn or ValueError       ValueError                ValueError
  'pallas'        triton or ValueError      splash or ValueError      ValueError
  'chunked'       chunked                   chunked                   chunked
  'xla'           xla                       xla                       xla

The platform is fixed when the step is traced: `compiling_for(platform)` (entered by the train
and eval steps with their mesh's platform, `platform_of`), else JAX's default backend. It is not
left to `lax.platform_dependent`: under autodiff every branch's residuals would be kept (zeros for
the branches not taken), the N x N weights among them. `assume_cudnn()` lets a machine without
cuDNN trace the cuDNN kernel for a compile-only GPU build. The flash kernels run per shard
(`shard_map` over the mesh axes of 'batch' and 'heads' under the active logical-axis rules).
"""
import contextlib
import math
import threading
from typing import Any, Callable, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

IMPLS = ('auto', 'xla', 'cudnn', 'pallas', 'chunked')
KERNELS = ('cudnn', 'splash', 'triton', 'chunked', 'xla')
CHUNK = 512  # Queries per chunk of the 'chunked' kernel: (B, heads, CHUNK, N) float32 at once.
CUDNN_DTYPES = (jnp.bfloat16, jnp.float16)
CUDNN_MAX_HEAD_DIM = 128  # 256 on Hopper; 128 runs on every cuDNN GPU.
CUDNN_PAD = 2  # Even lengths: what JAX's cuDNN training check accepts.
SPLASH_BLOCKS = (512, 256, 128)  # Splash's block: the largest of these dividing the padded N.
SPLASH_MIN = 128  # 'auto' on TPU: shorter sequences (ViViT's 16-frame time attention) use
# 'chunked' (= plain attention), cheaper than padding them to a 128-token block.
TRITON_BLOCK = 128
PALLAS_MIN_HEAD_DIM = 16  # Matrix units need head dims >= 16 (Triton's dot, Mosaic's tiles).
_ACCELERATORS = {'cuda': 'GPU (CUDA)', 'rocm': 'GPU (ROCm)', 'tpu': 'TPU'}
_target = threading.local()


# ---------------------------------------------------------------------------------------------
# The platform being compiled for.

def platform_of(devices: Sequence[jax.Device]) -> str:
  """The lowering platform ('cpu', 'cuda', 'rocm', 'tpu') of `devices` (e.g. a mesh's)."""
  device = next(iter(np.ravel(devices)))
  if device.platform != 'gpu':
    return device.platform
  version = getattr(device.client, 'platform_version', '') or ''
  return 'rocm' if 'rocm' in version.lower() else 'cuda'


@contextlib.contextmanager
def compiling_for(platform: str):
  """Attention traced inside picks its kernels for `platform` ('cpu', 'cuda', 'rocm', 'tpu')."""
  previous = getattr(_target, 'platform', None)
  _target.platform = platform
  try:
    yield
  finally:
    _target.platform = previous


def target_platform() -> str:
  """The platform set by `compiling_for`, else JAX's default backend as a lowering platform."""
  platform = getattr(_target, 'platform', None)
  return platform or platform_of(jax.devices())


@contextlib.contextmanager
def assume_cudnn(version: int = 90800):
  """Lets a machine without cuDNN trace jax's cuDNN attention (it asks for the library's
  version at trace time): for compile-only GPU builds on a CPU host. Real GPUs never need it."""
  from jax._src.cudnn import fused_attention_stablehlo as fused  # pylint: disable=g-import-not-at-top
  original = fused.check_cudnn_version
  fused.check_cudnn_version = lambda: version
  try:
    yield
  finally:
    fused.check_cudnn_version = original


# ---------------------------------------------------------------------------------------------
# Choosing the kernel.

def _problem(kernel: str, platform: str, dtype: Any, head_dim: int, dropout: bool,
             same_lengths: bool) -> Optional[str]:
  """Why `kernel` cannot run here, phrased with the fix, or None."""
  needs = {'cudnn': ('cuda',), 'triton': ('cuda',), 'splash': ('tpu',)}[kernel]
  if platform not in needs:
    where = ' or '.join(_ACCELERATORS[p] for p in needs)
    return (f"it runs on {where} only and this step is compiled for {platform}: use "
            f"attention_impl='auto' (or 'chunked')")
  if dropout:
    return ("it has no attention-weight dropout: set config.model.attention_dropout_rate=0 or "
            "attention_impl='chunked'")
  if kernel == 'cudnn':
    if jnp.dtype(dtype) not in CUDNN_DTYPES:
      return (f"it needs a bfloat16 or float16 compute dtype, got {jnp.dtype(dtype)}: set "
              f"config.model.dtype='bfloat16' or attention_impl='chunked'")
    if head_dim % 8 or head_dim > CUDNN_MAX_HEAD_DIM:
      return (f"it needs head_dim (hidden_size / num_heads) % 8 == 0 and <= "
              f"{CUDNN_MAX_HEAD_DIM}, got {head_dim}: change config.model.hidden_size/num_heads "
              f"or use attention_impl='chunked'")
  elif kernel == 'triton' and not same_lengths:
    return ("it needs as many queries as keys (one segment-id array): use "
            "attention_impl='auto' or 'chunked'")
  elif head_dim < PALLAS_MIN_HEAD_DIM or head_dim % 8:
    return (f"it needs head_dim (hidden_size / num_heads) >= {PALLAS_MIN_HEAD_DIM} and a "
            f"multiple of 8, got {head_dim}: change config.model.hidden_size/num_heads or use "
            f"attention_impl='chunked'")
  return None


def choose_kernel(impl: str, *, platform: str, dtype: Any, head_dim: int, q_length: int,
                  kv_length: int, dropout: bool = False) -> str:
  """The KERNEL that attention_impl `impl` runs for q of `dtype` and `head_dim`, `q_length`
  queries and `kv_length` keys, compiled for `platform`, with attention-weight `dropout` or not
  (see the module docstring's table). Never picks a kernel that refuses the shape; an explicit 'cudnn' or
  'pallas' that cannot run raises ValueError with the reason and the fix."""
  if impl not in IMPLS:
    raise ValueError(f"config.model.attention_impl='{impl}' is not one of {', '.join(IMPLS)}.")
  if impl in ('xla', 'chunked'):
    return impl
  if impl == 'auto':
    wanted = {'cuda': 'cudnn', 'tpu': 'splash'}.get(platform)
    if wanted == 'splash' and min(q_length, kv_length) < SPLASH_MIN:
      wanted = None
    if wanted and not _problem(wanted, platform, dtype, head_dim, dropout,
                                    q_length == kv_length):
      return wanted
    return 'chunked'
  kernel = 'cudnn' if impl == 'cudnn' else {'tpu': 'splash'}.get(platform, 'triton')
  problem = _problem(kernel, platform, dtype, head_dim, dropout, q_length == kv_length)
  if problem:
    raise ValueError(f"config.model.attention_impl='{impl}' cannot run: {problem}.")
  return kernel


# ---------------------------------------------------------------------------------------------
# The kernels: q, k, v (B, N, heads, head_dim) -> (B, N, heads, head_dim).

def _pad_tokens(x: jax.Array, length: int) -> jax.Array:
  """(B, N, ...) -> (B, length, ...), zeros after the N tokens."""
  return jnp.pad(x, [(0, 0), (0, length - x.shape[1])] + [(0, 0)] * (x.ndim - 2))


def _padded_length(n: int, multiple: int) -> int:
  return -(-n // multiple) * multiple


def xla_attention(q, k, v, *, dropout_rate: float = 0.0, dropout_rng=None):
  """Plain softmax(q k^T / sqrt(head_dim)) v in float32 logits; with `dropout_rate` > 0 the
  weights are dropped (`dropout_rng`) and the kept ones scaled by 1 / (1 - rate)."""
  if not dropout_rate:
    return jax.nn.dot_product_attention(q, k, v, implementation='xla')
  logits = jnp.einsum('bqhd,bkhd->bhqk', q, k, preferred_element_type=jnp.float32)
  weights = jax.nn.softmax(logits * q.shape[-1] ** -0.5)
  keep = jax.random.bernoulli(dropout_rng, 1.0 - dropout_rate, weights.shape)
  weights = jnp.where(keep, weights / (1.0 - dropout_rate), 0.0).astype(v.dtype)
  return jnp.einsum('bhqk,bkhd->bqhd', weights, v)


def chunked_attention(q, k, v, *, chunk: int = CHUNK, dropout_rate: float = 0.0,
                      dropout_rng=None):
  """xla_attention over `chunk` queries at a time (queries padded to a multiple of it), each
  chunk rematerialised in the backward pass: at most (B, heads, chunk, N) weights live."""
  b, n, heads, head_dim = q.shape
  if n <= chunk:
    return xla_attention(q, k, v, dropout_rate=dropout_rate, dropout_rng=dropout_rng)
  chunks = -(-n // chunk)
  q_chunks = _pad_tokens(q, chunks * chunk).reshape(b, chunks, chunk, heads, head_dim)
  rngs = (jax.random.split(dropout_rng, chunks) if dropout_rate
          else jnp.zeros((chunks,), jnp.uint32))

  @jax.checkpoint
  def one_chunk(args):
    q_chunk, rng = args
    return xla_attention(q_chunk, k, v, dropout_rate=dropout_rate,
                         dropout_rng=rng if dropout_rate else None)

  out = jax.lax.map(one_chunk, (q_chunks.swapaxes(0, 1), rngs))  # (chunks, B, chunk, h, d)
  return out.swapaxes(0, 1).reshape(b, chunks * chunk, heads, head_dim)[:, :n]


def padded_attention(q, k, v, *, multiple: int = CUDNN_PAD, implementation: str = 'cudnn'):
  """jax.nn.dot_product_attention `implementation` on tokens padded to a multiple of
  `multiple`, padded keys masked by `key_value_seq_lengths` (cuDNN: a padding mask, no N x N
  bias); 'xla' gives its reference twin."""
  (b, n), n_kv = q.shape[:2], k.shape[1]
  q_len, kv_len = _padded_length(n, multiple), _padded_length(n_kv, multiple)
  if (q_len, kv_len) == (n, n_kv):
    return jax.nn.dot_product_attention(q, k, v, implementation=implementation)
  out = jax.nn.dot_product_attention(
      _pad_tokens(q, q_len), _pad_tokens(k, kv_len), _pad_tokens(v, kv_len),
      key_value_seq_lengths=jnp.full((b,), n_kv, jnp.int32), implementation=implementation)
  return out[:, :n]


def _segment_ids(n: int, length: int) -> jax.Array:
  """(length,) int32: 1 for the n tokens, 0 for the padding after them."""
  return (jnp.arange(length) < n).astype(jnp.int32)


def splash_attention(q, k, v, *, interpret: bool = False):
  """TPU Pallas splash attention (non-causal), tokens padded to its block, padding separated
  by segment ids."""
  from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_kernel as splash  # pylint: disable=g-import-not-at-top
  from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_mask as masks  # pylint: disable=g-import-not-at-top
  _, n, heads, head_dim = q.shape
  n_kv = k.shape[1]
  q_len, kv_len = (_padded_length(x, SPLASH_BLOCKS[-1]) for x in (n, n_kv))
  block_q, block_kv = (next(b for b in SPLASH_BLOCKS if x % b == 0) for x in (q_len, kv_len))
  kernel = splash.make_splash_mha(
      masks.MultiHeadMask([masks.FullMask((q_len, kv_len))] * heads), head_shards=1,
      q_seq_shards=1, interpret=interpret, block_sizes=splash.BlockSizes(
          block_q=block_q, block_kv=block_kv, block_kv_compute=block_kv, block_q_dkv=block_q,
          block_kv_dkv=block_kv, block_kv_dkv_compute=block_kv, block_q_dq=block_q,
          block_kv_dq=block_kv))
  # Every query (padding too: its rows are dropped) sees the n_kv keys, so no row is empty.
  segments = splash.SegmentIds(q=jnp.ones((q_len,), jnp.int32), kv=_segment_ids(n_kv, kv_len))
  heads_first = lambda x, length: _pad_tokens(x, length).swapaxes(1, 2)  # (B, h, length, d).
  out = jax.vmap(lambda q, k, v: kernel(q, k, v, segment_ids=segments))(
      heads_first(q * jnp.asarray(head_dim ** -0.5, q.dtype), q_len), heads_first(k, kv_len),
      heads_first(v, kv_len))
  return out.swapaxes(1, 2)[:, :n]


def triton_attention(q, k, v, *, interpret: bool = False):
  """GPU Pallas (Triton) flash attention, tokens padded to its block, padding separated by
  segment ids."""
  from jax.experimental.pallas.ops.gpu import attention as gpu_attention  # pylint: disable=g-import-not-at-top
  b, n, _, head_dim = q.shape
  length = _padded_length(n, TRITON_BLOCK)
  segments = jnp.broadcast_to(_segment_ids(n, length), (b, length))
  out = gpu_attention.mha(*(_pad_tokens(x, length) for x in (q, k, v)), segment_ids=segments,
                          sm_scale=head_dim ** -0.5, interpret=interpret)
  return out[:, :n]


def _per_shard(fn: Callable[..., jax.Array]) -> Callable[..., jax.Array]:
  """`fn` on q, k, v (B, N, heads, d) run per shard of the active mesh: batch and heads split
  as the logical-axis rules map 'batch' and 'heads', tokens whole. Unchanged without a mesh."""
  mesh = jax.sharding.get_abstract_mesh()
  if mesh.empty or math.prod(mesh.shape.values()) == 1:
    return fn
  batch, _, heads, _ = nn.logical_to_mesh_axes(('batch', 'length', 'heads', 'kv'))
  spec = jax.sharding.PartitionSpec(batch, None, heads, None)
  return jax.shard_map(fn, mesh=mesh, in_specs=(spec,) * 3, out_specs=spec, check_vma=False)


def attend(q: jax.Array, k: jax.Array, v: jax.Array, *, impl: str, dropout_rate: float = 0.0,
           dropout_rng: Optional[jax.Array] = None, platform: Optional[str] = None
           ) -> jax.Array:
  """Multi-head softmax attention q, k, v (B, N, heads, head_dim) -> (B, N, heads, head_dim),
  scaled by 1 / sqrt(head_dim), with the kernel `choose_kernel` picks for attention_impl `impl`
  on `platform` (default: target_platform()). `dropout_rate` > 0 (training) drops attention
  weights with `dropout_rng`."""
  kernel = choose_kernel(impl, platform=platform or target_platform(), dtype=q.dtype,
                         head_dim=q.shape[-1], q_length=q.shape[1], kv_length=k.shape[1],
                         dropout=dropout_rate > 0)
  dropout = dict(dropout_rate=dropout_rate, dropout_rng=dropout_rng)
  if kernel == 'xla':
    return xla_attention(q, k, v, **dropout)
  if kernel == 'chunked':
    return chunked_attention(q, k, v, **dropout)
  kernel_fn = {'cudnn': padded_attention, 'splash': splash_attention,
               'triton': triton_attention}[kernel]
  return _per_shard(kernel_fn)(q, k, v)
