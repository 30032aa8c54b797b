"""What the training benchmarks read back from a run's metrics.jsonl (common.runs)."""
import json

from tools.benchmarks.common import runs


def test_eval_curve_and_clips_per_s_from_metrics(tmp_path):
  rows = [{'step': 1, 'train/clips_per_s': 5.0}, {'step': 2, 'train/clips_per_s': 40.0},
          {'step': 2, 'eval/top1': 0.25, 'eval/loss': 2.0},
          {'step': 3, 'train/clips_per_s': 60.0}, {'step': 3, 'eval/top1': 0.5}]
  (tmp_path / 'metrics.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in rows))
  assert runs.eval_curve(str(tmp_path)) == [(2, 0.25), (3, 0.5)]
  assert runs.train_clips_per_s(str(tmp_path)) == 50.0  # The first row (compiling) left out.
  (tmp_path / 'metrics.jsonl').write_text(json.dumps({'step': 4, 'eval/loss': 0.75}) + '\n')
  assert runs.eval_curve(str(tmp_path)) == [(4, 0.75)]  # Pre-training: no top-1.
