"""The motion benchmark's table: top-1 on clips and on static clips per model, and its command."""
from tools.benchmarks import motion_models


def test_table_gives_both_accuracies_and_the_command(tmp_path):
  row = dict(model='i3d', config=motion_models.MOTION_PRESETS['i3d'], name='i3d',
             optimizer='sgd lr 0.1', clip='8x64x64 / 2', steps=300, batch=32, top1=0.9,
             top5=1.0, static_top1=0.1, seconds=120.0)
  record = dict(benchmark='motion_models', dataset='synthetic_motion', rows=[row],
                machine='test')
  text = motion_models.write(record, str(tmp_path))
  assert ('| i3d | `configs/cnn/i3d_r50_k400.py:tiny` | 8x64x64 / 2 | 300 x 32 | sgd lr 0.1 | '
          '0.9000 | 1.0000 | 0.1000 | 120.0 |') in text
  assert 'Regenerate: `python tools/benchmark.py motion_models --models i3d`.' in text
  assert (tmp_path / 'motion_models.md').read_text() == text
