"""The continual benchmark: its models' twins at paper size, the analytic per-frame count it
reports, and its tables."""
import ml_collections
import pytest

from configs import common
from tools.benchmarks import continual as benchmark
from vivit_jax.models import continual, flops


def test_paper_models_have_twins_and_the_receptive_fields_of_the_paper():
  fields = {name: continual.build(common.load(f"{preset}:{arg or ''}").model).receptive_field
            for name, (preset, arg) in benchmark.MODELS.items()}
  assert fields == {'CoSlow-R50 (8x8)': 19, 'CoI3D-R50 (8x8)': 36, 'CoX3D-M': 57}


def test_one_more_frame_costs_one_position_per_layer():
  """The analytic per-frame count (F(RF + 1) - F(RF) of the unpadded clip model) of a 2D-only
  ResNet (every temporal kernel 1) is its count on one frame: each layer computes one more
  position per frame."""
  config = ml_collections.ConfigDict(dict(name='resnet3d', num_classes=10, depth=10,
                                          base_width=4, temporal_kernels=(1, 1, 1, 1),
                                          temporal_padding='valid'))
  one, two = (flops.layer_flops(config, (t, 32, 32)) for t in (1, 2))
  head = 2 * 8 * 4 * 10  # The classifier runs once per clip.
  assert two - one == pytest.approx(one - head)


def test_tables_give_costs_accuracy_and_the_command(tmp_path):
  row = dict(model='CoX3D-M', config='configs/cnn/x3d_k400.py:M', clip='16x224x224',
             receptive_field=57, temporal_stride=1, clip_gflops=9.46, clip_xla_gflops=9.77,
             step_gflops=0.591, step_xla_gflops=0.618, flop_ratio=16.0, state_mib=27.4,
             latency_crop=112, clip_ms=6815.2, step_ms=442.3)
  accuracy = dict(run='i3d_r10_tiny', config='configs/cnn/i3d_r50_k400.py:tiny', steps=300,
                  train_seconds=200.0, final_top1=0.26, clip_frames=8, receptive_field=8,
                  clip=0.2594, continual=0.2281, unpadded=0.2281, agreement=0.5039, views=1280)
  too_long = {k: v for k, v in accuracy.items() if k != 'unpadded'} | dict(run='i3d_tiny',
                                                                          receptive_field=36)
  record = dict(benchmark='continual', rows=[row], accuracy=[accuracy, too_long], device='cpu',
                machine='test')
  text = benchmark.write(record, str(tmp_path))
  assert ('| CoX3D-M | `configs/cnn/x3d_k400.py:M` | 16x224x224 | 57 | 9.46 (9.77) | 0.591 '
          '(0.618) | 16.0x | 27.4 | 112 | 6815.2 | 442.3 |') in text
  assert ('| i3d_r10_tiny | `configs/cnn/i3d_r50_k400.py:tiny` | 8 / 8 | 0.2594 | 0.2281 | '
          '0.2281 | 0.5039 |') in text
  assert '| i3d_tiny | `configs/cnn/i3d_r50_k400.py:tiny` | 36 / 8 | 0.2594 | 0.2281 | - |' in text
  assert 'Regenerate: `python tools/benchmark.py continual`.' in text
  assert (tmp_path / 'continual.md').read_text() == text
