r"""R(2+1)D-18 on Kinetics-400 from scratch (Tran et al. 2018, arXiv:1711.11248); with the argument
'r3d', its 3D baseline R3D-18; 'mc3' the mixed-convolution MC3-18; 'torchvision' R(2+1)D-18 with
torchvision's intermediate widths. Shared parts in configs/cnn/recipe.py.

  python -m vivit_jax.main --config configs/cnn/r2plus1d_18_k400.py --workdir runs/r2plus1d_18
  python -m vivit_jax.main --config configs/cnn/r2plus1d_18_k400.py:tiny --workdir runs/r21d_tiny

Fine-tuning torchvision's Kinetics-400 weights (torchvision.models.video's state dict file as
torchvision downloads it, converted by vivit_jax/weights/torchvision_video.py), on your K classes:

  python -m vivit_jax.main --config configs/cnn/r2plus1d_18_k400.py:r3d --workdir runs/r3d_18_ft \
      --config.init_from.path=r3d_18-b3b3357e.pth --config.model.num_classes=K
  (likewise :mc3 with mc3_18-a90a0ba3.pth, :torchvision with r2plus1d_18-91a641e6.pth;
  --config.init_from.load_head=True keeps the 400-class classifier)

  variant      torchvision  config.model                         params      K400 acc@1 (torchvision)
  r3d          r3d_18       factorised=False                     33,371,472  52.75 / 63.20
  mc3          mc3_18       factorised=False, temporal_stages=1  11,695,440  53.90 / 63.96
  torchvision  r2plus1d_18  mid_width_rule='torchvision'         31,505,325  57.50 / 67.46
  r2plus1d     -            (the authors' per-conv widths)       33,370,839  -

acc@1: torchvision's published top-1 on 16 x 112 x 112 clips (v0.13 docs, one clip), then on
videos (current docs: 5 clips of 16 frames at 15 fps per video). The parameter counts are
torchvision's `num_params` (tests/weights/test_torchvision_video.py checks ours equal them). The
torchvision-checkpoint variants (r3d, mc3, torchvision) normalise with torchvision's Kinetics
mean/std (TORCHVISION_MEAN/STD below) so its weights see the inputs they were trained on; the
default r2plus1d keeps PySlowFast's 0.45/0.225.

Model (vivit_jax/models/r2plus1d.py): ResNet-18 with every 3x3x3 conv factorised into a 1x3x3
spatial conv to M_i = floor(3*9*N_{i-1}*N_i / (9*N_{i-1} + 3*N_i)) channels, BN, ReLU and a 3x1x1
temporal conv; a (2+1)D stem (45 intermediate channels), no max pool, T, H, W halved by stages
2-4. 33.37M parameters, as R3D-18 (33.37M; torchvision's r3d_18 exactly). MC3-18: the stem and
stage 1 as R3D, stages 2-4 with 1 x 3 x 3 convs that keep T (11.70M).
Recipe: 16-frame clips at stride 2 (about 15 fps, as torchvision's reference), 112 x 112 crops,
horizontal flip, SGD momentum 0.9, weight decay 1e-4 (not on BN or biases), 10 linear warmup
epochs then cosine decay over 45 epochs (torchvision's reference recipe for its r2plus1d_18
weights has the same momentum, weight decay, warmup and length, with step decay at epochs 20 and
30), batch 64 at lr 0.025 (ImageNet's 0.1 per 256 scaled linearly; this preset's choice);
testing 10 clips x 1 centre crop, softmax averaged.

Expect: torchvision's r2plus1d_18 / r3d_18 weights (its reference recipe) give video top-1
67.46% / 63.20% on Kinetics-400 (the table above); this preset's runs were not measured here (no
Kinetics, no accelerator).
Frames are resized to short side 128 (the paper's 128 x 171 for 4:3 video) before the crops, in
training and at test. Not reproduced: the paper's 8-frame-then-32-frame schedule and its step
learning-rate decay.
Tiny: base_width 8 (stem M = 5) on synthetic_motion 8 x 28 x 28 clips, 300 steps; expect test
top-1 0.99, top-5 1.0 (1280 clips; train top-1 0.70 at step 150), ~11 min on 2 busy CPU cores
(20-55 clips/s).
"""
import os
import sys

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path[:0] = [] if _REPO in sys.path else [_REPO]  # configs.common without installing.
from configs import common  # noqa: E402  pylint: disable=wrong-import-position
from configs.cnn import recipe  # noqa: E402  pylint: disable=wrong-import-position

BATCH_SIZE = 64
# torchvision's video models' input normalisation (references/video_classification).
TORCHVISION_MEAN = (0.43216, 0.394666, 0.37645)
TORCHVISION_STD = (0.22803, 0.22145, 0.216989)
# Variant -> config.model fields (the table above).
VARIANTS = {
    'r2plus1d': dict(factorised=True),
    'r3d': dict(factorised=False),
    'mc3': dict(factorised=False, temporal_stages=1),
    'torchvision': dict(factorised=True, mid_width_rule='torchvision'),
}
EPOCHS = 45
WARMUP_EPOCHS = 10


def get_config(arg=None):
  """The preset; arg variant=r2plus1d (R(2+1)D-18, default) | r3d (R3D-18) | mc3 (MC3-18) |
  torchvision (torchvision's R(2+1)D-18), and tiny (CPU size)."""
  args = common.parse_arg(arg, __file__, variant=tuple(VARIANTS))
  config = recipe.default_config()
  config.model = recipe.model_config('r2plus1d', num_classes=400, depth=18, base_width=64,
                                     zero_init_residual=False, dropout_rate=0.0,
                                     **VARIANTS[args.variant])
  recipe.kinetics_sgd(config, num_frames=16, stride=2, crop_size=112,
                      batch_size=BATCH_SIZE, learning_rate=0.025, epochs=EPOCHS,
                      warmup_epochs=WARMUP_EPOCHS, nesterov=False, eval_crops=1,
                      eval_every_epochs=5, short_side_range=(128, 128), eval_short_side=128)
  if args.variant != 'r2plus1d':  # torchvision's architectures: its checkpoints' inputs.
    config.dataset.update(mean=TORCHVISION_MEAN, std=TORCHVISION_STD)
  return recipe.tiny(config) if args.tiny else config
