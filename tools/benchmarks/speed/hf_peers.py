"""The Hugging Face PyTorch model of the same configuration as one of ours, and its timed training
step (forward, loss, backward, gradient clipping, optimizer step), forward and forward + backward.

The configs map field by field onto the ones `weights.hf` reads (its readers turn these HF
configs back into ours: tests/tools/benchmarks/speed/test_hf_peers.py checks the round trip).
Models without an HF peer (ViViT Models 2-4, the CNNs) give None. torch and transformers are
imported only when called.
"""
import statistics
import time

from vivit_jax.models import layers

# (our config.model field, HF config field) of the ViT-style models; `weights.hf._common_config`
# reads them the other way.
COMMON_FIELDS = (('hidden_size', 'hidden_size'), ('num_layers', 'num_hidden_layers'),
                 ('num_heads', 'num_attention_heads'), ('mlp_dim', 'intermediate_size'),
                 ('dropout_rate', 'hidden_dropout_prob'),
                 ('attention_dropout_rate', 'attention_probs_dropout_prob'))
# HF config fields whose type annotation rejects the values the models take (transformers 5.x
# declares TimesformerConfig.drop_path_rate an int): set after the config is built.
MISTYPED_FIELDS = ('drop_path_rate',)


def _common(m) -> dict:
  return dict({hf: m[ours] if ours in m else 0.0 for ours, hf in COMMON_FIELDS},  # 0: dropout.
              layer_norm_eps=m.get('layer_norm_eps', layers.LN_EPSILON),
              hidden_act=m.get('hidden_act', 'gelu'))


def hf_config(model_config, clip) -> tuple[str, dict] | None:
  """(transformers class name, its config's fields) of the model of `model_config` on clips
  `clip` (T, H, W), or None where transformers has no such model."""
  m, (frames, height, width) = model_config, clip
  size = height if height == width else [height, width]
  if m.name == 'vivit' and m.variant == 'spatio_temporal' and m.classifier == 'token' and (
      m.get('tokenizer', 'tubelet') == 'tubelet'):
    return 'VivitForVideoClassification', dict(
        _common(m), image_size=size, num_frames=frames, tubelet_size=list(m.patch_size),
        qkv_bias=m.get('qkv_bias', 'qkv') == 'qkv', num_labels=m.num_classes)
  if m.name == 'timesformer':
    return 'TimesformerForVideoClassification', dict(
        _common(m), image_size=m.image_size, patch_size=m.patch_size, num_frames=m.num_frames,
        qkv_bias=m.get('qkv_bias', 'qkv') == 'qkv', drop_path_rate=m.stochastic_depth,
        num_labels=m.num_classes)
  videomae = dict(image_size=size, num_frames=frames, patch_size=m.get('patch_size', 16),
                  tubelet_size=m.get('tubelet_size', 2), qv_bias=m.get('qkv_bias', 'qv') == 'qv')
  if m.name == 'videomae':
    return 'VideoMAEForVideoClassification', dict(
        _common(m), **videomae, use_mean_pooling=m.use_mean_pooling, num_labels=m.num_classes)
  if m.name == 'videomae_pretrain':
    return 'VideoMAEForPreTraining', dict(
        _common(m), **videomae, use_mean_pooling=not m.encoder_norm,
        decoder_hidden_size=m.decoder_hidden_size, decoder_num_hidden_layers=m.decoder_num_layers,
        decoder_num_attention_heads=m.decoder_num_heads,
        decoder_intermediate_size=m.decoder_mlp_dim, norm_pix_loss=m.norm_pix_loss)
  return None


def build_model(class_name: str, fields: dict, attention: str = 'sdpa'):
  """The transformers model `class_name` with config `fields`, in `attention` (falls back to
  'eager' for models with no SDPA path, e.g. TimeSformer); returns (model, attention used)."""
  import transformers  # pylint: disable=import-outside-toplevel
  cls = getattr(transformers, class_name)
  config = cls.config_class(**{k: v for k, v in fields.items() if k not in MISTYPED_FIELDS})
  for k in MISTYPED_FIELDS:
    if k in fields:
      object.__setattr__(config, k, fields[k])
  if not getattr(cls, '_supports_sdpa', False):
    attention = 'eager'
  config._attn_implementation = attention  # pylint: disable=protected-access
  return cls(config), attention


def tube_mask(batch_size: int, fields: dict, mask_ratio: float, seed: int = 0):
  """VideoMAE's tube mask (B, N) bool: round(mask_ratio * P) of the P spatial positions per
  example, masked at every time step (as ours, vivit_jax.models.masking)."""
  import torch  # pylint: disable=import-outside-toplevel
  size = fields['image_size']
  height, width = (size, size) if isinstance(size, int) else size
  positions = (height // fields['patch_size']) * (width // fields['patch_size'])
  frames = fields['num_frames'] // fields['tubelet_size']
  generator = torch.Generator().manual_seed(seed)
  masked = round(mask_ratio * positions)
  order = torch.stack([torch.randperm(positions, generator=generator)
                       for _ in range(batch_size)])
  spatial = order < masked
  return spatial[:, None, :].expand(batch_size, frames, positions).reshape(batch_size, -1)


def inputs(class_name: str, fields: dict, batch_size: int, num_classes: int, model_config,
           device):
  """Random keyword inputs of one training step: pixel_values (B, T, C, H, W) and labels, or
  the tube mask for pre-training."""
  import torch  # pylint: disable=import-outside-toplevel
  generator = torch.Generator().manual_seed(0)
  size = fields['image_size']
  height, width = (size, size) if isinstance(size, int) else size
  pixels = torch.randn(batch_size, fields['num_frames'], 3, height, width, generator=generator)
  kwargs = {'pixel_values': pixels}
  if class_name == 'VideoMAEForPreTraining':
    kwargs['bool_masked_pos'] = tube_mask(batch_size, fields, model_config.mask_ratio)
  else:
    kwargs['labels'] = torch.randint(0, num_classes, (batch_size,), generator=generator)
  return {k: v.to(device) for k, v in kwargs.items()}


def optimizer(params, opt_config):
  """torch's counterpart of our config.optimizer ('adamw' or 'sgd') at its peak learning rate."""
  import torch  # pylint: disable=import-outside-toplevel
  o = opt_config
  if o.name == 'adamw':
    return torch.optim.AdamW(params, lr=o.learning_rate, betas=(o.b1, o.b2), eps=o.eps,
                             weight_decay=o.weight_decay)
  if o.name == 'sgd':
    return torch.optim.SGD(params, lr=o.learning_rate, momentum=o.momentum,
                           nesterov=o.nesterov, weight_decay=o.weight_decay)
  raise ValueError(f"config.optimizer.name='{o.name}' has no torch counterpart here "
                   f"(adamw, sgd).")


def prepare(config, batch_size: int):
  """The HF peer of `config`'s model on random clips at `batch_size`, on the GPU if torch has one
  (bf16 autocast), else the CPU (float32): ({phase: call} whose calls wait for their work, info
  dict), or None where there is no peer. Phases (PHASES): 'forward' (the loss, no autograd
  graph: torch.no_grad), 'forward_backward' (the loss and every parameter's gradient) and 'step'
  (forward, backward, gradient clipping, optimizer step), the model in training mode."""
  import torch  # pylint: disable=import-outside-toplevel
  from tools.benchmarks.speed import ours  # pylint: disable=import-outside-toplevel
  peer = hf_config(config.model, ours.clip_shape(config))
  if peer is None:
    return None
  class_name, fields = peer
  device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
  model, attention = build_model(class_name, fields)
  model.to(device).train()
  opt = optimizer(model.parameters(), config.optimizer)
  kwargs = inputs(class_name, fields, batch_size, config.model.get('num_classes', 1),
                  config.model, device)
  clip_norm = config.optimizer.get('grad_clip_norm')
  cuda = device.type == 'cuda'
  if cuda:
    torch.cuda.reset_peak_memory_stats(device)

  def wait():
    if cuda:
      torch.cuda.synchronize(device)

  def loss():
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
      return model(**kwargs).loss

  def forward():
    with torch.no_grad():
      loss()
    wait()

  def forward_backward():
    model.zero_grad(set_to_none=True)
    loss().backward()
    wait()

  def train_step():
    opt.zero_grad(set_to_none=True)
    loss().backward()
    if clip_norm:
      torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
    opt.step()
    wait()

  info = dict(model=class_name, attention=attention,
              precision='bf16 autocast' if cuda else 'float32',
              params=sum(p.numel() for p in model.parameters()))
  return dict(forward=forward, forward_backward=forward_backward, step=train_step), info


PHASES = ('forward', 'forward_backward', 'step')


def fastest_threads(calls, choices, repeats: int = 2) -> int:
  """The torch thread count of `choices` at which `calls()` ran fastest (best of `repeats`
  each), left set. On a CPU that other processes load, OpenMP's threads wait for each other:
  torch at 2 threads ran 2-3x slower than at 1 on this shared 2-core machine, so the peer gets
  whichever count suits it now."""
  import torch  # pylint: disable=import-outside-toplevel
  best = {}
  for threads in dict.fromkeys(choices):
    torch.set_num_threads(threads)
    best[threads] = min(_seconds(calls) for _ in range(repeats))
  threads = min(best, key=best.get)
  torch.set_num_threads(threads)
  return threads


def _seconds(fn) -> float:
  start = time.perf_counter()
  fn()
  return time.perf_counter() - start


def summary(info: dict, batch_size: int, times: list[float]) -> dict:
  """`info` with the median and fastest step ms, clips/s and (GPU) peak memory allocated."""
  import torch  # pylint: disable=import-outside-toplevel
  step_s = statistics.median(times)
  return dict(info, step_ms=step_s * 1e3, fastest_step_ms=min(times) * 1e3,
              clips_per_s=batch_size / step_s,
              peak_device_bytes=int(torch.cuda.max_memory_allocated())
              if torch.cuda.is_available() else None)


def release_memory():
  """Hands the GPU memory torch caches back (so our next compile or batch search can have it)."""
  import torch  # pylint: disable=import-outside-toplevel
  if torch.cuda.is_available():
    torch.cuda.empty_cache()
