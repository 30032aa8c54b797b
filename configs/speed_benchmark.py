"""The models of the speed and memory benchmarks (`tools/benchmark.py models|memory`): name ->
preset, and each preset at benchmark size.

'real' is the preset as trained (bfloat16, cudnn attention for the transformers: accelerators);
'tiny' keeps the architecture, tokenizer and optimizer but shrinks widths, depths and clips so a
model's CPU measurement takes seconds. Unlike a preset's `:tiny` (configs/common.py), which keeps
every feature of the paper run to test its code paths, it measures what a CPU user would run:
float32, XLA attention, encoders unrolled.
"""
import ml_collections

from configs import common

MODELS = {
    'vivit1': 'configs/vivit/k400.py',
    'vivit2': 'configs/vivit/k400.py:factorised_encoder',
    'vivit3': 'configs/vivit/k400.py:factorised_self_attention',
    'vivit4': 'configs/vivit/k400.py:factorised_dot_product',
    'videomae_pretrain': 'configs/videomae/pretrain.py:B',
    'videomae_finetune': 'configs/videomae/finetune.py:B',
    'timesformer': 'configs/timesformer/base_8x224.py',
    'i3d': 'configs/cnn/i3d_r50_k400.py',
    'slowfast': 'configs/cnn/slowfast_r50_k400.py',
    'c3d': 'configs/cnn/c3d_sports1m.py',
}
SIZES = ('tiny', 'real')
# Tiny sizes: ViT-B's mlp ratio 4 at a quarter of its width and a third of its depth, 4 heads
# (Model 4 splits them evenly between space and time); VideoMAE's decoder likewise; CNNs at a
# quarter of their base width.
TINY_TRANSFORMER = dict(hidden_size=192, num_heads=4, mlp_dim=768, num_layers=4)
TINY_DECODER = dict(decoder_hidden_size=128, decoder_num_heads=2, decoder_mlp_dim=512,
                    decoder_num_layers=2)
TINY_CNN = dict(base_width=16)
TINY_C3D_FC_WIDTH = 512
# Tiny clips (frames, crop side): half the frames (C3D keeps its 16: five poolings), 64^2
# (C3D 32^2); 2x16x16 tubelets give 8 x 4 x 4 tokens for ViViT.
TINY_CLIPS = {'vivit1': (16, 64), 'vivit2': (16, 64), 'vivit3': (16, 64), 'vivit4': (16, 64),
              'videomae_pretrain': (8, 64), 'videomae_finetune': (8, 64), 'timesformer': (4, 64),
              'i3d': (4, 64), 'slowfast': (16, 64), 'c3d': (16, 32)}
TRANSFORMERS = ('vivit', 'timesformer', 'videomae', 'videomae_pretrain')
# Tiny (CPU) encoders run unrolled, as a CPU user should run them: scan_layers (a compile-time
# option for deep models on accelerators, the same maths) made XLA:CPU's forward + backward of
# ViViT Model 1 (width 192, 4 layers; width 128, 6 layers) 25-35% slower, most of it in the
# backward's copies of the scan's stacked residuals and per-layer gradients (benchmarks/README.md).
TINY_UNROLLED = True


def check_names(names) -> list[str]:
  """`names` if all are in MODELS, else ValueError naming the unknown ones and the choices."""
  unknown = sorted(set(names) - set(MODELS))
  if unknown:
    raise ValueError(f'Unknown --models {unknown}; choose from {", ".join(MODELS)}.')
  return list(names)


def load_preset(name: str) -> ml_collections.ConfigDict:
  """The paper-size preset of model `name` (a key of MODELS)."""
  return common.load(MODELS[name])


def benchmark_config(name: str, size: str) -> ml_collections.ConfigDict:
  """Model `name`'s preset at `size` ('tiny' | 'real'); config.dataset.num_frames and crop_size
  give the clip, config.mesh one device."""
  if size not in SIZES:
    raise ValueError(f"--size {size!r} is not one of {', '.join(SIZES)}.")
  config = load_preset(name)
  m = config.model
  transformer = m.name in TRANSFORMERS
  if size == 'real':
    if transformer:
      m.attention_impl = 'cudnn'
    m.dtype = 'bfloat16'
    return config
  frames, crop = TINY_CLIPS[name]
  config.dataset.update(num_frames=frames, crop_size=crop)
  m.update(dtype='float32', **(dict(attention_impl='xla', **TINY_TRANSFORMER)
                               if transformer else TINY_CNN))
  if 'scan_layers' in m:  # Unrolled: see TINY_UNROLLED.
    m.scan_layers = not TINY_UNROLLED
  if m.name == 'videomae_pretrain':
    m.update(TINY_DECODER)
  if m.name == 'timesformer':
    m.update(num_frames=frames, image_size=crop)
  if 'num_temporal_layers' in m:
    m.num_temporal_layers = 2
  if 'fc_width' in m:
    m.fc_width = TINY_C3D_FC_WIDTH
  return config
