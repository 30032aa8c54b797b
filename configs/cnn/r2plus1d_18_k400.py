r"""R(2+1)D-18 on Kinetics-400 from scratch (Tran et al. 2018, arXiv:1711.11248); with the argument
'r3d', its 3D baseline R3D-18. Shared parts in configs/cnn/recipe.py.

  python -m vivit_jax.main --config configs/cnn/r2plus1d_18_k400.py --workdir runs/r2plus1d_18
  python -m vivit_jax.main --config configs/cnn/r2plus1d_18_k400.py:tiny --workdir runs/r21d_tiny

Model (vivit_jax/models/r2plus1d.py): ResNet-18 with every 3x3x3 conv factorised into a 1x3x3
spatial conv to M_i = floor(3*9*N_{i-1}*N_i / (9*N_{i-1} + 3*N_i)) channels, BN, ReLU and a 3x1x1
temporal conv; a (2+1)D stem (45 intermediate channels), no max pool, T, H, W halved by stages
2-4. 33.37M parameters, as R3D-18 (33.37M; torchvision's r3d_18 exactly).
Recipe: 16-frame clips at stride 2 (about 15 fps, as torchvision's reference), 112 x 112 crops,
horizontal flip, SGD momentum 0.9, weight decay 1e-4 (not on BN or biases), 10 linear warmup
epochs then cosine decay over 45 epochs (torchvision's reference recipe for its r2plus1d_18
weights has the same momentum, weight decay, warmup and length, with step decay at epochs 20 and
30), batch 64 at lr 0.025 (ImageNet's 0.1 per 256 scaled linearly; this preset's choice);
testing 10 clips x 1 centre crop, softmax averaged.

Expect: torchvision's r2plus1d_18 / r3d_18 weights (its reference recipe) give clip top-1 67.5% /
63.2% on Kinetics-400; this preset's run was not measured here (no Kinetics, no accelerator).
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
EPOCHS = 45
WARMUP_EPOCHS = 10


def get_config(arg=None):
  """The preset; arg variant=r2plus1d (R(2+1)D-18, default) or r3d (R3D-18), and tiny (CPU
  size)."""
  args = common.parse_arg(arg, __file__, variant=('r2plus1d', 'r3d'))
  config = recipe.default_config()
  config.model = recipe.model_config('r2plus1d', num_classes=400, depth=18, base_width=64,
                                     factorised=args.variant != 'r3d', zero_init_residual=False,
                                     dropout_rate=0.0)
  recipe.kinetics_sgd(config, num_frames=16, stride=2, crop_size=112,
                      batch_size=BATCH_SIZE, learning_rate=0.025, epochs=EPOCHS,
                      warmup_epochs=WARMUP_EPOCHS, nesterov=False, eval_crops=1,
                      eval_every_epochs=5, short_side_range=(128, 128), eval_short_side=128)
  return recipe.tiny(config) if args.tiny else config
