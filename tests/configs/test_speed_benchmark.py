"""The benchmarks' presets (configs/speed_benchmark.py): real sizes on GPU settings, tiny
sizes for the CPU, names and sizes checked."""
import pytest

from configs import speed_benchmark


def test_real_sizes_are_the_presets_on_gpu_settings():
  sizes = {'vivit1': (32, 224), 'videomae_pretrain': (16, 224), 'i3d': (8, 224),
           'slowfast': (32, 224), 'c3d': (16, 112), 'timesformer': (8, 224)}
  for name, (frames, crop) in sizes.items():
    config = speed_benchmark.benchmark_config(name, 'real')
    assert (config.dataset.num_frames, config.dataset.crop_size) == (frames, crop), name
    assert config.model.dtype == 'bfloat16'
    assert config.model.get('attention_impl', 'cudnn') == 'cudnn'
  assert speed_benchmark.benchmark_config('vivit1', 'real').model.hidden_size == 768
  assert speed_benchmark.benchmark_config('vivit1', 'tiny').model.hidden_size == 192
  with pytest.raises(ValueError, match="Unknown --models \\['vivit9'\\]"):
    speed_benchmark.check_names(['vivit1', 'vivit9'])
  with pytest.raises(ValueError, match="--size 'huge'"):
    speed_benchmark.benchmark_config('vivit1', 'huge')
