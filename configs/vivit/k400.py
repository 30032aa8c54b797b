r"""ViViT/16x2 on Kinetics-400 (Arnab et al. 2021, arXiv:2103.15691), 32x224x224 clips; the
argument picks the variant (Sec. 3.3) and size: `variant=` spatio_temporal (Model 1, default),
factorised_encoder (Model 2), factorised_self_attention (Model 3) or factorised_dot_product
(Model 4); `size=` B (default) or L (released for factorised_encoder only); `tiny` (CPU size).

  python -m vivit_jax.main --config configs/vivit/k400.py --workdir runs/vivit_b_model1
  python -m vivit_jax.main --config configs/vivit/k400.py:factorised_encoder,L --workdir runs/l_fe
  python -m vivit_jax.main --config configs/vivit/k400.py:tiny,factorised_encoder --workdir runs/t

Expect (the paper; 4 clips x 3 crops, ViT ImageNet-21k initialisation): ViViT-B top-1 80.0
(Model 1), 78.8 (Model 2), 77.4 (Model 3), 76.3 (Model 4) (Table 4); ViViT-L/16x2 FE 80.6
(Table 6). Not measured here: no Kinetics and no accelerator (the paper: 30 epochs of batch 64 on
TPU). The paper run needs a 'kinetics400' TFDS dataset (vivit_jax/data/standard_datasets.py)
and config.init_from.path (ViT ImageNet-21k).
Tiny: the same variant, tokenizer, classifier, optimizer and peak learning rate, bfloat16 with
scanned layers (and L's 'dots' remat), at configs/default.py's sizes on synthetic_motion, 300
steps. Measured for Model 1 (`:tiny`, jax 0.10.2, 2 CPU cores shared with other jobs at the
lowest priority, so ~51 min; an idle machine takes a fraction of that): test top-1 0.985, top-5
1.0 on synthetic_motion's 1280 test clips. The other variants' tiny versions were not run to the
end here (tests/configs/test_tiny_matrix.py traces each).

Recipe (scenic, scenic/projects/vivit/configs/kinetics400/{vivit_base_k400,
vivit_base_factorised_encoder, vivit_large_factorised_encoder}.py, and the paper's Sec. 4.1,
Appendix): 32 frames at stride 2, 224 crops, 2x16x16 tubelets, the central-frame tubelet kernel
from the image ViT, SGD momentum 0.9, batch 64, 30 epochs, cosine decay to 0 after 2.5 warmup
epochs, gradient clipping at norm 1, no weight decay, and on Kinetics no dropout, stochastic depth
or label smoothing. Base learning rate 0.1 (Models 1, 3, 4: scenic releases no Model 3 or 4
config, so they take Model 1's), 0.05 (B FE, 4 temporal layers), 0.1 (L FE, 24 temporal layers).
Model 3 starts its temporal attention at zero (the output projection only).
Training crops follow a short-side scale jitter (256 x [0.9, 1.33] = 230-341), testing takes 4
clips x 3 crops of frames resized to short side 256. Not yet supported by the pipeline, so absent:
colour augmentation (p=0.8, colour drop p=0.1); mixup and RandAugment (the paper's Epic Kitchens
and SSv2 recipes, not Kinetics).
"""
import os
import sys

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path[:0] = [] if _REPO in sys.path else [_REPO]  # configs.common without installing.
from configs import common  # noqa: E402  pylint: disable=wrong-import-position
from vivit_jax.models import vivit  # noqa: E402  pylint: disable=wrong-import-position

VARIANTS = ('spatio_temporal', 'factorised_encoder', 'factorised_self_attention',
            'factorised_dot_product')
SIZES = ('B', 'L')
BATCH_SIZE = 64
EPOCHS = 30
WARMUP_EPOCHS = 2.5
STEPS_PER_EPOCH = common.KINETICS400_TRAIN_CLIPS // BATCH_SIZE
# (variant, size) -> the released recipe's config.model fields and base learning rate.
RECIPES = {
    ('spatio_temporal', 'B'): (dict(classifier='token'), 0.1),
    ('factorised_encoder', 'B'): (dict(classifier='token', num_temporal_layers=4), 0.05),
    ('factorised_self_attention', 'B'): (dict(classifier='gap'), 0.1),
    ('factorised_dot_product', 'B'): (dict(classifier='gap'), 0.1),
    ('factorised_encoder', 'L'): (  # ViT-L activations: recompute attention.
        dict(classifier='token', num_temporal_layers=24, remat='dots'), 0.1),
}


def get_config(arg=None):
  """The preset of arg (the module docstring)."""
  args = common.parse_arg(arg, __file__, variant=VARIANTS, size=SIZES)
  if (args.variant, args.size) not in RECIPES:
    raise ValueError(f"configs/vivit/k400.py:{arg}: ViViT-{args.size} {args.variant} has no "
                     f"released recipe; use size B, or configs/vivit/k400.py:factorised_encoder,L.")
  model, learning_rate = RECIPES[args.variant, args.size]
  config = common.default_config()
  config.dataset.update(name='kinetics400', num_frames=32, stride=2, crop_size=224, flip=True,
                        train_crop='scale_jitter', short_side_range=(230, 341),
                        eval_short_side=256, eval_clips=4, eval_crops=3)
  config.model.update(variant=args.variant, num_classes=400, patch_size=(2, 16, 16),
                      stochastic_depth=0.0, dtype='bfloat16', scan_layers=True,
                      **vivit.size_preset(args.size), **model)
  common.set_sgd(config, learning_rate=learning_rate, epochs=EPOCHS,
                 warmup_epochs=WARMUP_EPOCHS, steps_per_epoch=STEPS_PER_EPOCH, momentum=0.9,
                 nesterov=False, weight_decay=0.0, grad_clip_norm=1.0)
  config.train.update(batch_size=BATCH_SIZE, label_smoothing=0.0, log_every_steps=100,
                      eval_every_steps=STEPS_PER_EPOCH)
  config.checkpoint.every_steps = 1000
  # ViT-{size}/16 ImageNet-21k, e.g. big_vision's / google-research/vision_transformer's
  # gs://vit_models/imagenet21k/ViT-B_16.npz (ViT-L_16.npz for L); '' trains from scratch.
  config.init_from.update(path='', kernel_init='central_frame')
  return common.tiny_transformer(config) if args.tiny else config
