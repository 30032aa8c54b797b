"""The speed benchmark's tiny configs shrunk further, for tests."""
from configs import speed_benchmark


def small(name: str):
  """`name`'s tiny benchmark config shrunk further (1-2 layers, width 32, 4 x 32^2 clips)."""
  config = speed_benchmark.benchmark_config(name, 'tiny')
  config.model.update(hidden_size=32, num_heads=2, mlp_dim=64, num_layers=1)
  if name == 'videomae_pretrain':
    config.model.update(decoder_hidden_size=16, decoder_num_heads=2, decoder_mlp_dim=32,
                        decoder_num_layers=1)
  if name == 'timesformer':
    config.model.update(num_frames=4, image_size=32)  # Its clip size is a model field.
  crop = 64 if name == 'videomae_pretrain' else 32  # Tube masking 0.9 needs > 10 positions.
  config.dataset.update(num_frames=4, crop_size=crop)
  return config
