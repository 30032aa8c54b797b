r"""Default job: a tiny ViViT (Model 1) on the built-in `synthetic_motion` dataset.

Run (dataset build ~10 s, then 600 steps and 2 evaluations):

  python -m vivit_jax.main --config configs/default.py --workdir runs/default

Expect: test top-1 0.98-1.00 over seeds, top-5 1.0 on synthetic_motion's 1280 test clips
(0.94-0.97 at step 300); the same model given the middle frame repeated
(tools/static_frame_probe.py) scores ~0.09, chance 0.10. benchmarks/default_job.md measured it
(seeds 0, 1: 0.9883, 0.9922) with jax 0.10.2, flax 0.12.8, tensorflow 2.21.0 on a 2-core x86_64
CPU shared with other jobs: ~9 min at ~80 clips/s (an idle machine is faster).
Any field can be overridden, e.g. `--config.train.num_steps=100 --config.model.num_layers=2`.
"""
import ml_collections


def get_config(arg=None):
  """Returns the default ConfigDict; the default job takes no argument (`configs/X.py:ARG`)."""
  if arg:
    raise ValueError(f"Unknown preset argument '{arg}' in configs/default.py:{arg}; the default "
                     f"job takes none (override fields with --config.a.b=value).")
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.task = 'classification'  # Or 'masked_video_modeling' (VideoMAE pre-training).

  config.dataset = ml_collections.ConfigDict(dict(
      name='synthetic_motion',
      data_dir='',  # '' = TFDS default (honours TFDS_DATA_DIR).
      train_split='train',
      eval_split='test',
      num_frames=8,  # Frames per clip.
      stride=2,  # Temporal stride between sampled frames.
      crop_size=28,  # Spatial side of the (random / centre) crop.
      train_crop='random',  # Training: 'random' crop_size square; 'random_resized' (Inception:
                            # area fraction in random_resized_scale, aspect w/h in
                            # random_resized_ratio, resized to crop_size; VideoMAE);
                            # 'scale_jitter' (short side resized to a random integer in
                            # short_side_range, then a random crop; 3D CNNs, SlowFast).
      random_resized_scale=(0.08, 1.0),
      random_resized_ratio=(3 / 4, 4 / 3),
      short_side_range=(256, 320),
      eval_short_side=0,  # Evaluation: resize frames to this short side before the crops
                          # (papers: 256 for 224 crops); 0 = as stored.
      flip=False,  # Horizontal flip in training; off: flips change motion labels.
      mean=(0.5, 0.5, 0.5),  # Pixels are scaled to [0, 1], then (x - mean) / std.
      std=(0.5, 0.5, 0.5),
      shuffle_buffer=2048,
      eval_clips=1,  # Evaluation views per video: clips uniformly spaced in time ...
      eval_crops=1,  # ... x crops (1: centre; 3: along the long side); softmax averaged.
      flow=False,  # Batches also carry 'flow' (B, T-1, S, S, 2): Farneback optical flow of each
                   # clip in [-1, 1] (data/flow.py), for two-stream models; costs host CPU.
  ))

  config.model = ml_collections.ConfigDict(dict(
      name='vivit',
      variant='spatio_temporal',
      num_classes=10,
      patch_size=(2, 7, 7),  # Tubelet (t, h, w).
      hidden_size=64,
      num_layers=4,
      num_heads=4,
      mlp_dim=256,
      dropout_rate=0.0,
      attention_dropout_rate=0.0,
      stochastic_depth=0.1,
      classifier='token',  # 'token' (CLS) or 'gap' (global average pool).
      attention_impl='auto',  # 'auto': the flash kernel of the platform compiled for (GPU:
                              # cuDNN, TPU: Pallas splash) where it fits, else 'chunked'
                              # (memory-efficient XLA); 'xla', 'cudnn', 'pallas' (an error
                              # where it cannot run), 'chunked'. See vivit_jax/models/attention.py.
      remat='none',  # Recompute each transformer block in the backward pass: 'none', 'full'
                     # (save nothing) or 'dots' (save the matmuls without batch dims).
      scan_layers=False,  # nn.scan over identical blocks: one compiled block, params stacked
                          # (encoder/blocks, leading 'layers' axis); checkpoints convert.
      dtype='float32',  # Compute dtype; 'bfloat16' on accelerators.
      param_dtype='float32',
  ))

  config.train = ml_collections.ConfigDict(dict(
      batch_size=64,  # Global batch, split over all devices and processes.
      num_steps=600,
      label_smoothing=0.1,
      mixup_alpha=0.0,  # Mixup Beta(alpha, alpha) on each batch; 0 = off.
      cutmix_alpha=0.0,  # CutMix likewise; with both on, CutMix with mixup_switch_prob.
      mixup_switch_prob=0.5,
      log_every_steps=50,
      eval_every_steps=300,
      eval_batch_size=128,
  ))

  config.optimizer = ml_collections.ConfigDict(dict(
      name='adamw',
      learning_rate=2e-3,  # Peak, reached after warmup, then cosine decay.
      end_learning_rate=1e-5,
      warmup_steps=60,
      b1=0.9,
      b2=0.999,
      eps=1e-8,
      weight_decay=0.05,
      grad_clip_norm=1.0,
      layer_decay=1.0,  # Layer-wise lr decay (< 1: layer i of L gets lr * decay^(L + 1 - i)).
  ))

  # Start training from pretrained weights (fine-tuning); path '' = random initialisation.
  config.init_from = ml_collections.ConfigDict(dict(
      path='',  # Image ViT (HF save_pretrained dir or big_vision .npz), HF video model dir,
                # 2D ResNet for a resnet3d (HF ResNet dir or torchvision .safetensors),
                # or Orbax checkpoint (a workdir, or tools/convert_checkpoint.py output).
      kernel_init='central_frame',  # Image ViT or 2D ResNet: 3D kernels from the 2D ones,
                                    # 'central_frame' | 'average' | 'random'.
      load_head=False,  # Also copy the classifier (needs the same number of classes).
  ))

  config.checkpoint = ml_collections.ConfigDict(dict(
      every_steps=200,
      keep=2,
  ))

  # Mesh axis sizes; -1 takes all remaining devices.
  config.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, model=1))
  # Logical axis name -> mesh axes. Parameters and activations carry logical names.
  config.sharding_rules = (
      ('batch', ('data', 'fsdp')),
      ('embed', 'fsdp'),
      ('mlp', 'model'),
      ('heads', 'model'),
      ('kv', None),
      ('length', None),
      ('classes', None),
      ('conv_in', 'fsdp'),  # CNN kernels (..., conv_in, conv_out), like Dense (embed, mlp).
      ('conv_out', 'model'),
      ('lstm_state', 'fsdp'),  # CNN-LSTM recurrent kernels (lstm_state, lstm).
      ('lstm', 'model'),
      ('layers', None),  # The stacked axis of scanned blocks (config.model.scan_layers).
  )
  return config
