"""FLOPs and parameter counts of a model config for one view (T, H, W), forward pass, batch 1.

FLOPs count 2 per multiply-add. `analytic_flops` counts the matrix products and convolutions
(tubelet or patch embedding, q/k/v/out projections, attention scores and weighted sums, MLP,
head), the convention of fvcore and of the papers' tables once doubled; for the convolutional and
recurrent families it is `layer_flops`, every nn.Conv and nn.Dense counted from the shapes they
see (the papers' convention for CNNs: convolutions and fully connected layers). `xla_flops` is
XLA's cost analysis of the lowered forward pass, which also counts element-wise work (LayerNorm,
GELU, softmax, residual adds, BatchNorm, pooling), a few percent at ViT-B widths. None of them
needs memory for the weights.

XLA counts a while loop's body once and a cuDNN custom call not at all, so XLA counts are taken of
`counting_config`: the model unscanned, without remat and with XLA attention (the same maths).
They are lowered for the CPU backend (`jax.devices('cpu')`, present on every host): GPU and TPU
PJRT plugins return no cost analysis (None). `cost_flops` reads one without ever indexing a None;
where none is given, callers fall back to `analytic_flops`.
"""
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from vivit_jax import models
from vivit_jax.models import embed, mvit

CHANNELS = 3
# Speed options that change how XLA counts, not what the model computes: their counting values.
COUNTING_OPTIONS = {'scan_layers': False, 'remat': 'none', 'attention_impl': 'xla'}


def counting_config(model_config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A copy of `model_config` with COUNTING_OPTIONS for the fields it has: the same model, whose
  every layer and attention product XLA's cost analysis sees (once per layer)."""
  config = model_config.copy_and_resolve_references()
  config.update({k: v for k, v in COUNTING_OPTIONS.items() if k in config})
  return config


def _projections(tokens: int, width: int) -> int:
  """q, k, v and output projections of `tokens` tokens of `width`."""
  return 4 * 2 * tokens * width * width


def _attend(sequences: int, length: int, width: int) -> int:
  """Scores q k^T and the weighted sum of v: `sequences` sequences of `length` tokens whose heads
  together are `width` wide."""
  return 2 * 2 * sequences * length * length * width


def _mlp(tokens: int, width: int, mlp_dim: int) -> int:
  return 2 * 2 * tokens * width * mlp_dim


def _embedding(tokens: int, patch_volume: int, width: int) -> int:
  """A strided conv over RGB patches of `patch_volume` pixels, one per token."""
  return 2 * tokens * patch_volume * CHANNELS * width


def _joint_encoder(layers: int, sequences: int, length: int, width: int, mlp_dim: int) -> int:
  """`layers` ViT blocks over `sequences` independent sequences of `length` tokens."""
  tokens = sequences * length
  return layers * (_projections(tokens, width) + _attend(sequences, length, width)
                   + _mlp(tokens, width, mlp_dim))


def _vivit_encoders(m: ml_collections.ConfigDict, nt: int, ns: int) -> int:
  """The encoder(s) of a ViViT variant over nt temporal indices x ns spatial tokens."""
  cls = int(m.classifier == 'token')
  d, layers, mlp_dim = m.hidden_size, m.num_layers, m.mlp_dim
  if m.variant == 'spatio_temporal':
    return _joint_encoder(layers, 1, nt * ns + cls, d, mlp_dim)
  if m.variant == 'factorised_encoder':
    return (_joint_encoder(layers, nt, ns + cls, d, mlp_dim)
            + _joint_encoder(m.get('num_temporal_layers', 4), 1, nt + cls, d, mlp_dim))
  n = nt * ns
  if m.variant == 'factorised_self_attention':  # Spatial then temporal attention, then MLP.
    attention = 2 * _projections(n, d) + _attend(nt, ns, d) + _attend(ns, nt, d)
  elif m.variant == 'factorised_dot_product':  # Half the heads in space, half in time.
    attention = _projections(n, d) + _attend(nt, ns, d // 2) + _attend(ns, nt, d // 2)
  else:
    raise ValueError(f"config.model.variant='{m.variant}' is not a ViViT variant.")
  return layers * (attention + _mlp(n, d, mlp_dim))


def _vivit(m: ml_collections.ConfigDict, shape) -> int:
  """ViViT on a (T, H, W) clip."""
  tubelet = embed.tubelet_shape(m.get('tokenizer', 'tubelet'), m.patch_size)
  nt, nh, nw = (size // p for size, p in zip(shape, tubelet))
  return (_embedding(nt * nh * nw, int(np.prod(tubelet)), m.hidden_size)
          + _vivit_encoders(m, nt, nh * nw) + 2 * m.hidden_size * m.num_classes)


def _timesformer(m: ml_collections.ConfigDict, shape) -> int:
  """TimeSformer (divided space-time) on a (T, H, W) clip: per block, temporal attention over the
  T frames of each of the P patches and `temporal_dense`, then spatial attention over the P
  patches of each frame plus the CLS copy, then the MLP over 1 + P * T tokens."""
  t, h, w = shape
  p, d = (h // m.patch_size) * (w // m.patch_size), m.hidden_size
  block = (_projections(p * t, d) + _attend(p, t, d) + 2 * p * t * d * d
           + _projections(t * (p + 1), d) + _attend(t, p + 1, d) + _mlp(1 + p * t, d, m.mlp_dim))
  return (_embedding(t * p, m.patch_size ** 2, d) + m.num_layers * block
          + 2 * d * m.num_classes)


def _videomae_pretrain(m: ml_collections.ConfigDict, shape) -> int:
  """VideoMAE pre-training on a (T, H, W) clip: the embedding of all N cubes, the encoder's joint
  attention over the V = N - M visible ones, `encoder_to_decoder`, the decoder over the V visible
  plus K mask tokens (its blocks' attention included) and its `head` on the K reconstructed cubes
  (M masked, K reconstructed: VideoMAEPretrain.num_masked)."""
  t, h, w = shape
  grid = (t // m.tubelet_size, h // m.patch_size, w // m.patch_size)
  n, cube = math.prod(grid), m.tubelet_size * m.patch_size ** 2 * CHANNELS
  masked, keep = models.build(m).num_masked(grid)
  visible, d, dd = n - masked, m.hidden_size, m.decoder_hidden_size
  return (_embedding(n, m.tubelet_size * m.patch_size ** 2, d)
          + _joint_encoder(m.num_layers, 1, visible, d, m.mlp_dim) + 2 * visible * d * dd
          + _joint_encoder(m.decoder_num_layers, 1, visible + keep, dd, m.decoder_mlp_dim)
          + 2 * keep * dd * cube)


def _videomae(m: ml_collections.ConfigDict, shape) -> int:
  """VideoMAE's classifier on a (T, H, W) clip: joint attention over all cubes (no CLS token)."""
  t, h, w = shape
  n = (t // m.tubelet_size) * (h // m.patch_size) * (w // m.patch_size)
  d = m.hidden_size
  return (_embedding(n, m.tubelet_size * m.patch_size ** 2, d)
          + _joint_encoder(m.num_layers, 1, n, d, m.mlp_dim) + 2 * d * m.num_classes)


def _mvit(m: ml_collections.ConfigDict, shape) -> int:
  """MViT on a (T, H, W) clip: `layer_flops` (patch embedding, pooling convs, MLPs, `proj`,
  head) plus each block's q/k/v projections of its N input tokens, output projection, attention
  over the pooled Nq queries and Nk keys and, with rel_pos, the queries' products with the
  t + h + w relative-position rows of each key grid (CLS token included in N, Nq, Nk)."""
  model = models.build(m)
  grid = mvit.pooled_grid(shape, model.patch_kernel, model.patch_stride)
  cls, total = int(model.classifier == 'token'), layer_flops(m, shape)
  width = model.embed_dim
  for block in model.blocks(grid, bool(cls)):
    pooling = block['pooling']
    q_grid, k_grid = pooling.q_grid, pooling.kv_grid
    n, nq, nk = (cls + math.prod(g) for g in (pooling.grid, q_grid, k_grid))
    features = block['features']
    total += 2 * features * (3 * n * width + nq * features) + _attend(1, 1, features) * nq * nk
    if model.rel_pos:
      total += 2 * math.prod(q_grid) * features * sum(k_grid)
    width = block['out_features']
  return total


ANALYTIC = {'vivit': _vivit, 'mvit': _mvit, 'timesformer': _timesformer, 'videomae': _videomae,
            'videomae_pretrain': _videomae_pretrain}


def analytic_flops(model_config: ml_collections.ConfigDict, input_shape) -> int:
  """FLOPs of matrix products and convolutions for one clip of `input_shape` (T, H, W): the
  formulas above for the transformers, `layer_flops` for every other model."""
  if model_config.name not in ANALYTIC:
    return layer_flops(model_config, input_shape)
  return ANALYTIC[model_config.name](model_config, tuple(input_shape))


def module_layer_flops(model: nn.Module, variables, *inputs, **kwargs) -> int:
  """2 x the multiply-adds of every nn.Conv and nn.Dense that `model.apply(variables, *inputs,
  train=False, **kwargs)` calls (abstract arrays suffice; masks, e.g. pre-training's, drawn from
  a fixed key): per call, the output elements times the
  kernel's size over its output axis (the kernel's input window x Cin / groups)."""
  _, state = jax.eval_shape(lambda v, x, kw: model.apply(
      v, *x, train=False, mutable=['intermediates'], rngs={'masking': jax.random.key(0)}, **kw,
      capture_intermediates=lambda m, _: isinstance(m, (nn.Conv, nn.Dense))),
      variables, inputs, kwargs)

  def walk(outputs, params) -> int:
    total = 0
    for name, value in outputs.items():
      if name == '__call__':
        kernel = params['kernel'].shape
        total += sum(math.prod(y.shape) for y in value) * math.prod(kernel[:-1])
      elif name in params:  # A submodule (not a value sown by the model).
        total += walk(value, params[name])
    return total

  return 2 * walk(state.get('intermediates', {}), variables['params'])


def layer_flops(model_config: ml_collections.ConfigDict, input_shape) -> int:
  """`module_layer_flops` of the model of `model_config` on one clip of `input_shape` (T, H, W)."""
  model, variables, video, extra = _abstract(model_config, input_shape)
  return module_layer_flops(model, nn.unbox(variables), video, **extra)


def _abstract(model_config: ml_collections.ConfigDict, input_shape):
  """(module, abstract params, abstract video (1, T, H, W, 3), abstract other inputs by keyword,
  e.g. two_stream's flow) without allocating weights."""
  model = models.build(model_config)
  video = jax.ShapeDtypeStruct((1,) + tuple(input_shape) + (CHANNELS,), jnp.float32)
  extra = {k: jax.ShapeDtypeStruct(s, jnp.float32)
           for k, s in models.extra_input_shapes(model, video.shape).items()}
  variables = jax.eval_shape(lambda x, kw: model.init(jax.random.key(0), x, train=False, **kw),
                             video, extra)
  return model, variables, video, extra


def cost_flops(stage) -> float | None:
  """The 'flops' of a `jax.stages.Lowered` or `Compiled` stage's cost analysis, or None where the
  backend gives none (GPU and TPU PJRT plugins return None) or it has no 'flops' entry. Reads the
  dict (or older JAX's one-element list) without indexing a missing analysis."""
  try:
    analysis = stage.cost_analysis()
  except Exception:  # pylint: disable=broad-except  # Backends without it may also raise.
    return None
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0] if analysis else None
  flops = analysis.get('flops') if isinstance(analysis, dict) else None
  return float(flops) if flops is not None and flops >= 0 else None


def on_cpu(tree):
  """Abstract copies (jax.ShapeDtypeStruct) of the arrays of `tree` placed on the first CPU
  device: a jit lowered on them is lowered (and cost-analysed) by the CPU backend, whatever the
  default backend is."""
  sharding = jax.sharding.SingleDeviceSharding(jax.devices('cpu')[0])
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree)


def xla_flops(model_config: ml_collections.ConfigDict, input_shape) -> float | None:
  """XLA's cost analysis ('flops') of the lowered, unoptimised forward pass on one clip (of
  `counting_config`), lowered for the CPU backend; None if it gives none (`cost_flops`).
  Pre-training's masks are drawn from a fixed 'masking' key."""
  model, variables, video, extra = _abstract(counting_config(model_config), input_shape)
  rngs = {'masking': jax.random.key(0)} if model_config.name == 'videomae_pretrain' else {}
  forward = jax.jit(lambda v, x, kw, r: model.apply(v, x, train=False, rngs=r, **kw))
  return cost_flops(forward.lower(*on_cpu((variables, video, extra, rngs))))


def forward_flops(model_config: ml_collections.ConfigDict, input_shape) -> tuple[float, str]:
  """(FLOPs of one clip's forward pass, source): `xla_flops` ('xla-cpu') where XLA gives a count,
  else `analytic_flops` ('analytic')."""
  counted = xla_flops(model_config, input_shape)
  if counted is not None:
    return counted, 'xla-cpu'
  return float(analytic_flops(model_config, input_shape)), 'analytic'


def param_count(model_config: ml_collections.ConfigDict, input_shape) -> int:
  """Number of parameters (position embeddings sized for `input_shape` (T, H, W))."""
  params = _abstract(model_config, input_shape)[1]['params']
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))
