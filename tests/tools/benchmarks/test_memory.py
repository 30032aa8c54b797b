"""The memory benchmark's files: memory.json holds the record, memory.md its table."""
import json
import os

from tools.benchmarks import memory

GIB = 2 ** 30


def test_write_gives_the_record_and_its_table(tmp_path):
  row = dict(preset='vivit1', target='h200', attention_impl='auto', remat='full', batch=8,
             kernel='cudnn', memory_bytes=2.5 * GIB, argument_bytes=GIB, output_bytes=GIB,
             temp_bytes=GIB, alias_bytes=GIB, oom=None, fits=True, compile_s=30.0,
             largest_batch=dict(largest=750, refused=751, exact=True))
  record = dict(benchmark='memory', batch=8, xla_rows=['vivit1'],
                targets={'h200': dict(description='NVIDIA H200', capacity_bytes=100 * GIB,
                                      capacity_note='test')},
                presets={'vivit1': 'configs/vivit/k400.py'}, rows=[row],
                versions=dict(jax='0.10.2'), compiler_options={'h200': {}}, machine='test',
                commit='abc', date='2026-01-02')
  text = memory.write(record, str(tmp_path))
  assert sorted(os.listdir(tmp_path)) == ['memory.json', 'memory.md']
  assert json.loads((tmp_path / 'memory.json').read_text()) == record
  assert (tmp_path / 'memory.md').read_text() == text
  assert '| vivit1 | auto | cudnn | full | 2.50 | 1.00 | 1.00 | yes | 750 | 30.0 |' in text
  assert 'Regenerate: `pip install -e \'.[aot]\'` then `python tools/benchmark.py memory`.' in text
