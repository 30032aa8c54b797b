"""Where metrics go: workdir/metrics.jsonl, TensorBoard events, and a progress line (the workdir
may be any tf.io.gfile path, e.g. gs://BUCKET/runs/NAME)."""
import json
import os
import time

import tensorflow as tf


class MetricWriter:
  """Appends `{'step': s, 'train/loss': ...}` lines to metrics.jsonl and TensorBoard scalars.

  A run resumed at `resume_step` first drops the rows of later steps (written after that
  checkpoint, before the interruption): they are written again, so each step has one row per
  kind (train, eval).
  """

  def __init__(self, workdir: str, enabled: bool = True, resume_step: int = 0):
    self.enabled = enabled
    if enabled:
      tf.io.gfile.makedirs(workdir)
      self.path = os.path.join(workdir, 'metrics.jsonl')
      self.summary = tf.summary.create_file_writer(os.path.join(workdir, 'tensorboard'))
      self._drop_after(resume_step)

  def _drop_after(self, step: int):
    if not tf.io.gfile.exists(self.path):
      return
    with tf.io.gfile.GFile(self.path) as f:
      lines = f.read().splitlines(keepends=True)
    kept = [line for line, at in zip(lines, map(_step_of, lines)) if at is not None and at <= step]
    if len(kept) < len(lines):
      with tf.io.gfile.GFile(self.path, 'w') as f:
        f.write(''.join(kept))

  def write(self, step: int, metrics: dict):
    if not self.enabled:
      return
    with tf.io.gfile.GFile(self.path, 'a') as f:
      f.write(json.dumps({'step': int(step), **{k: float(v) for k, v in metrics.items()}}) + '\n')
    with self.summary.as_default(step=int(step)):
      for name, value in metrics.items():
        tf.summary.scalar(name, float(value))
    self.summary.flush()


def final_eval(workdir: str, step: int) -> dict | None:
  """The eval/ metrics that metrics.jsonl holds for `step`, or None."""
  path = os.path.join(workdir, 'metrics.jsonl')
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as f:
    rows = [json.loads(line) for line in f if _step_of(line) == step]
  evals = [row for row in rows if any(k.startswith('eval/') for k in row)]
  return {k: v for k, v in evals[-1].items() if k != 'step'} if evals else None


def _step_of(line: str) -> int | None:
  """A metrics.jsonl row's step; None for a row cut short by a kill."""
  try:
    return int(json.loads(line)['step'])
  except (json.JSONDecodeError, KeyError, TypeError):
    return None


def _duration(seconds: float) -> str:
  seconds = int(max(seconds, 0))
  hours, rest = divmod(seconds, 3600)
  return f'{hours}h{rest // 60:02d}m' if hours else f'{rest // 60}m{rest % 60:02d}s'


class Progress:
  """Formats 'step 100/600 | loss 1.2340 | top1 0.5500 | lr 1.0e-03 | 812.3 clips/s | ETA 1m05s'
  (the task's train metrics, then learning rate, throughput and time to go)."""

  def __init__(self, first_step: int, total_steps: int, clips_per_step: int):
    self.total = total_steps
    self.clips_per_step = clips_per_step
    self._mark(first_step)

  def _mark(self, step):
    self.last_step, self.last_time = step, time.perf_counter()

  def line(self, step: int, metrics: dict) -> tuple[str, float]:
    """Returns (progress line, clips/s since the previous line)."""
    now = time.perf_counter()
    steps_per_s = (step - self.last_step) / max(now - self.last_time, 1e-9)
    self._mark(step)
    clips_per_s = steps_per_s * self.clips_per_step
    eta = (self.total - step) / max(steps_per_s, 1e-9)
    task_metrics = ' | '.join(f'{k[6:]} {v:.4f}' for k, v in metrics.items()
                              if k not in ('train/lr', 'train/grad_norm'))
    text = (f'step {step}/{self.total} | {task_metrics} | lr {metrics["train/lr"]:.2e} | '
            f'{clips_per_s:.1f} clips/s | ETA {_duration(eta)}')
    return text, clips_per_s

  def pause(self, step: int):
    """Excludes time spent outside training (evaluation, checkpointing) from the rate."""
    self._mark(step)
