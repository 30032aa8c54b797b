r"""CNN + LSTM on Kinetics-400: a 2D ResNet-50 on every frame, an LSTM over its per-frame features
(LRCN, Donahue et al. 2015, arXiv:1411.4389; with the argument 'snippets', the 5-layer LSTM of
Ng et al. 2015, "Beyond Short Snippets", arXiv:1503.08909). Shared parts in configs/cnn/recipe.py.

  python -m vivit_jax.main --config configs/cnn/cnn_lstm.py --workdir runs/cnn_lstm
  python -m vivit_jax.main --config configs/cnn/cnn_lstm.py:snippets --workdir runs/cnn_lstm5
  python -m vivit_jax.main --config configs/cnn/cnn_lstm.py:tiny --workdir runs/cnn_lstm_tiny

Model (vivit_jax/models/recurrent.py, CNNLSTM): ResNet-50 (ResNet2D's layers and parameter paths)
on the B x T frames, each frame's globally pooled 2048-d features, dropout 0.5, then
  ''          one LSTM of 256 units (LRCN's choice for RGB input) and the per-step logits averaged
              over the clip (LRCN averages its per-frame predictions);
  'snippets'  5 stacked LSTMs of 512 units (Ng et al.) and the last step's logits, over 30 frames
              (Ng et al. feed 30 frames, at 1 fps on Sports-1M; here stride 8, most of a 10 s
              Kinetics clip).
`--config.model.readout=last|mean` switches the readout; `model.apply(variables, video,
train=False, per_frame=True)` gives every step's logits (B, T, 400).
Recipe of this preset (the papers fine-tune ImageNet CNNs with Caffe / DistBelief on UCF-101
and Sports-1M; none trains this ResNet on Kinetics): 16 frames at stride 4, 224 crops,
horizontal flip, mean/std 0.45/0.225, SGD momentum 0.9, weight decay 1e-4 (not on BN or biases),
gradient norm clipped at 1 (the library's default, usual for LSTMs), batch 64, lr 0.05, 5 warmup
epochs then cosine over 45; testing 10 clips x 1 centre crop, softmax averaged.

Expect: no published Kinetics result for this recipe (the papers report UCF-101 and Sports-1M),
and none measured here (no Kinetics, no accelerator).
Differs from the papers: a ResNet-50 from scratch in place of ImageNet-pretrained CaffeNet
(LRCN) or GoogLeNet (Ng et al.; set config.init_from.path to start from weights), Kinetics in
place of UCF-101 / Sports-1M, end-to-end training of CNN and LSTM, no optical-flow stream, and
Ng et al.'s per-frame losses with a gain growing over time replaced by the one clip-level loss.
Tiny: depth 50 at base_width 8 (a 256-d feature per frame), LSTM widths as above, synthetic_motion
8 x 28 x 28 clips, 300 steps of AdamW (configs/default.py's, lr 2e-3) and readout 'last' (also for
':tiny,snippets'). With SGD (lr 0.1, Nesterov, clipped at 1) it stayed at chance (test top-1 0.11)
in 300 steps. With readout 'mean' it stays at chance too (0.11 after 150 AdamW steps, 'last':
0.74): an untrained LSTM's per-step outputs mostly follow the current frame, so their mean over
time hardly depends on the order of the frames, and synthetic_motion's directions visit the same
positions in opposite orders. ~110 clips/s on 2 CPU cores; benchmarks/motion_models.md has the
300-step result.
"""
import os
import sys

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path[:0] = [] if _REPO in sys.path else [_REPO]  # configs.common without installing.
from configs import common  # noqa: E402  pylint: disable=wrong-import-position
from configs.cnn import recipe  # noqa: E402  pylint: disable=wrong-import-position

BATCH_SIZE = 64
EPOCHS = 45
WARMUP_EPOCHS = 5
VARIANTS = {  # Preset argument -> LSTM fields, readout and frames.
    'lrcn': dict(lstm_width=256, num_lstm_layers=1, readout='mean', num_frames=16, stride=4),
    'snippets': dict(lstm_width=512, num_lstm_layers=5, readout='last', num_frames=30, stride=8),
}


def get_config(arg=None):
  """The preset; arg variant=lrcn (default) or snippets (Ng et al.), and tiny (CPU size)."""
  args = common.parse_arg(arg, __file__, variant=tuple(VARIANTS))
  fields = dict(VARIANTS[args.variant])
  num_frames, stride = fields.pop('num_frames'), fields.pop('stride')
  config = recipe.default_config()
  config.model = recipe.model_config('cnn_lstm', num_classes=400, depth=50, base_width=64,
                                     zero_init_residual=True, feature_dropout_rate=0.5,
                                     dropout_rate=0.0, **fields)
  recipe.kinetics_sgd(config, num_frames=num_frames, stride=stride, batch_size=BATCH_SIZE,
                      learning_rate=0.05, epochs=EPOCHS, warmup_epochs=WARMUP_EPOCHS,
                      nesterov=False, eval_crops=1, grad_clip_norm=1.0,
                      eval_every_epochs=5)
  if args.tiny:  # Reads the last step: see the module docstring.
    return recipe.tiny_adamw(recipe.tiny(config, readout='last'))
  return config
