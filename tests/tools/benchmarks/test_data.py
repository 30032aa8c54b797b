"""The input-pipeline benchmark's table: clips/s per core of both paths, their ratio, its
command."""
from tools.benchmarks import data


def test_table_gives_both_paths_per_core():
  record = dict(benchmark='data_pipeline', src='clips', videos=3, clip=data.DATA_CLIP, clips=80,
                build_seconds=4.0, cores=2, pipeline_clips_per_s=20.0,
                pipeline_clips_per_s_per_core=10.0, pyav_clips_per_s_per_core=2.5, ratio=4.0,
                machine='test')
  text = data.table(record)
  assert '80 training clips of 16 frames at stride 2, random 112x112 crops' in text
  assert 'tf.data on 2 cores: 20.0 clips/s) | 10.0 |' in text
  assert '(whole file decoded, one core) | 2.5 |' in text
  assert 'Ratio (pipeline / PyAV, per core): 4.0x.' in text
  assert 'Regenerate: `python tools/benchmark.py data`.' in text
