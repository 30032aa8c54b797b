r"""Prints the README's table of model presets: parameters and GFLOPs per view at each preset's
input, from XLA's cost analysis and from vivit_jax.models.flops' analytic count.

  python tools/model_table.py            # print the markdown table
  python tools/model_table.py --write    # also replace it in README.md

Needs no accelerator and no memory for weights (abstract shapes only); ~1 min on 2 CPU cores.
"""
import argparse
import os
import runpy

from vivit_jax.models import flops

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(REPO, 'README.md')
START, END = '<!-- model-table:start -->', '<!-- model-table:end -->'
# Config path[:arg] -> (model, the published G multiply-adds per view: ViViT Table 4, VideoMAE
# Table 6 (K400), the PySlowFast model zoo (at 256 x 256 views), torchvision's video models,
# X3D's Tables 3 and 4; else None).
PRESETS = {
    'configs/vivit/k400.py': ('ViViT-B/16x2 Model 1, spatio-temporal', 455.2),
    'configs/vivit/k400.py:factorised_encoder': ('ViViT-B/16x2 Model 2, factorised encoder',
                                                  284.4),
    'configs/vivit/k400.py:factorised_self_attention': (
        'ViViT-B/16x2 Model 3, fact. self-attention', 372.3),
    'configs/vivit/k400.py:factorised_dot_product': ('ViViT-B/16x2 Model 4, fact. dot-product',
                                                      277.1),
    'configs/vivit/k400.py:factorised_encoder,L': ('ViViT-L/16x2 Model 2, factorised encoder',
                                                   None),
    'configs/timesformer/base_8x224.py': ('TimeSformer-B, divided space-time', None),
    'configs/videomae/finetune.py:S': ('VideoMAE ViT-S/16, fine-tuned', 57.0),
    'configs/videomae/finetune.py:B': ('VideoMAE ViT-B/16, fine-tuned', 180.0),
    'configs/videomae/finetune.py:L': ('VideoMAE ViT-L/16, fine-tuned', 597.0),
    'configs/cnn/i3d_r50_k400.py': ('I3D-R50 8x8, inflated ResNet-50', '37.5 at 256x256'),
    'configs/cnn/i3d_r50_k400.py:nonlocal': ('I3D-R50 8x8 + non-local blocks', None),
    'configs/cnn/slowfast_r50_k400.py': ('SlowFast-R50 8x8', '65.7 at 256x256'),
    'configs/cnn/r2plus1d_18_k400.py': ('R(2+1)D-18', '40.5 (torchvision)'),
    'configs/cnn/r2plus1d_18_k400.py:r3d': ('R3D-18', '40.7 (torchvision)'),
    'configs/cnn/r2plus1d_18_k400.py:mc3': ('MC3-18', '43.3 (torchvision)'),
    'configs/cnn/r2plus1d_18_k400.py:torchvision': ("R(2+1)D-18, torchvision's widths",
                                                    '40.5 (torchvision)'),
    'configs/cnn/x3d_k400.py:XS': ('X3D-XS', 0.6),
    'configs/cnn/x3d_k400.py:S': ('X3D-S', 2.0),
    'configs/cnn/x3d_k400.py:M': ('X3D-M', '6.2 at 256x256 (4.73 at 224x224)'),
    'configs/cnn/x3d_k400.py:L': ('X3D-L', '24.8 at 356x356 (18.37 at 312x312)'),
    'configs/cnn/c3d_sports1m.py': ('C3D', None),
    'configs/cnn/single_frame.py': ('single frame, ResNet-18', None),
    'configs/cnn/late_fusion.py': ('late fusion (concat), ResNet-18', None),
    'configs/cnn/early_fusion.py': ('early fusion, ResNet-18', None),
    'configs/cnn/two_stream.py': ('two-stream (RGB + flow), ResNet-18 x 2', None),
    'configs/cnn/cnn_lstm.py': ('CNN+LSTM (LRCN), ResNet-50', None),
    'configs/cnn/conv_gru.py': ('GRU-RCN (ConvGRU), ResNet-18', None),
}
CAPTION = (
    'Presets (each also runs at CPU size as `CONFIG:tiny`), at the dataset and input their config '
    'trains on. GFLOPs per view: 10^9 floating-point operations of one forward pass on one clip, '
    '2 per multiply-add. The papers count multiply-adds (called GFLOPs there): compare their '
    'numbers, in the last column, with half of ours. XLA: the cost analysis of the lowered '
    'forward pass, which also counts element-wise work and skips taps on zero padding; analytic: '
    'matrix products and convolutions only, padding included (`vivit_jax.models.flops`). '
    'Regenerate with `python tools/model_table.py --write`.')


def row(path: str, model: str, paper) -> str:
  """One markdown row: model, config, dataset, input, params (M), GFLOPs (XLA), GFLOPs (analytic),
  the paper's G multiply-adds."""
  file, _, arg = path.partition(':')
  config = runpy.run_path(os.path.join(REPO, file))['get_config'](arg or None)
  ds = config.dataset
  shape = (ds.num_frames, ds.crop_size, ds.crop_size)
  params = flops.param_count(config.model, shape) / 1e6
  xla = flops.xla_flops(config.model, shape) / 1e9
  analytic = flops.analytic_flops(config.model, shape) / 1e9
  return (f'| {model} | `{path}` | {ds.name} | {shape[0]}x{shape[1]}x{shape[2]} | {params:.1f} '
          f'| {xla:.1f} | {analytic:.1f} | {paper or "-"} |')


def table() -> str:
  """The caption and the markdown table of every preset."""
  head = ['| model | config | dataset | input (T x H x W) | params (M) | GFLOPs/view (XLA) '
          '| GFLOPs/view (analytic) | paper G mult-adds |', '|---|---|---|---|---|---|---|---|']
  return '\n'.join([CAPTION, ''] + head + [row(p, *m) for p, m in PRESETS.items()])


def write(text: str, path: str = README):
  """Replaces what lies between START and END in `path` by `text`."""
  with open(path) as f:
    readme = f.read()
  if START not in readme or END not in readme:
    raise ValueError(f'{path} lacks the markers {START} and {END} around the model table.')
  before, rest = readme.split(START, 1)
  with open(path, 'w') as f:
    f.write(f'{before}{START}\n{text}\n{END}{rest.split(END, 1)[1]}')


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--write', action='store_true', help='Replace the table in README.md.')
  text = table()
  print(text)
  if parser.parse_args().write:
    write(text)


if __name__ == '__main__':
  main()
