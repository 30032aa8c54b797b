"""The VideoMAE pre-training table names the fine-tuning split and how to regenerate it, and a
low-label run writes its own files."""
import json
import os

from tools.benchmarks import videomae_pretraining


def _record(split: str, stem: str, seconds):
  arms = [dict(init=init, seed=seed, top1=top1, top5=1.0, loss=0.5, seconds=10.0)
          for init, seed, top1 in (('pre-trained', 0, 0.9), ('scratch', 0, 0.5),
                                   ('pre-trained', 1, 0.8), ('scratch', 1, 0.6))]
  return dict(benchmark=stem, machine='test',
              pretrain=dict(config='p', steps=10, final_eval_loss=0.97, seconds=seconds,
                            reconstruction='r.png'),
              finetune=dict(config='f', steps=5, train_split=split, arms=arms))


def test_low_label_results_get_their_own_files(tmp_path):
  text = videomae_pretraining.write(
      _record('train[:10%]', 'videomae_pretraining_train_10', None), str(tmp_path))
  assert sorted(os.listdir(tmp_path)) == ['videomae_pretraining_train_10.json',
                                          'videomae_pretraining_train_10.md']
  assert 'Mean test top-1: pre-trained 0.8500, scratch 0.5500' in text
  assert "5 steps for each arm on `train[:10%]`" in text and '(an earlier run, reused)' in text
  assert "videomae_pretraining --finetune_split='train[:10%]'`" in text
  record = json.load(open(tmp_path / 'videomae_pretraining_train_10.json'))
  assert record['finetune']['train_split'] == 'train[:10%]'


def test_full_data_table_keeps_its_command(tmp_path):
  text = videomae_pretraining.write(_record('train', 'videomae_pretraining', 12.5),
                                    str(tmp_path))
  assert '10 steps (12.5 s)' in text and 'on `train`' in text
  assert 'Regenerate: `python tools/benchmark.py videomae_pretraining`.' in text
