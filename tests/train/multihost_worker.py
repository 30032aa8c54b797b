"""One process of the multi-host test (tests/train/test_multihost.py); run as a script.

  python tests/train/multihost_worker.py --workdir W --data_dir D --out R.json
      [--coordinator 127.0.0.1:PORT --num_processes N --process_id I]

Runs the training loop (`loop.run`) on the tiny config over a data-parallel mesh of every device
of every process: 2 steps; then it resumes from the step-2 checkpoint (a collective Orbax save and
restore) towards step 8, where with --sigterm_at K the LAST process alone gets SIGTERM while its
batch K is read: every process must stop at one same step with one collective checkpoint
(TrainingInterrupted), and a third run resumes from it to step 8. Train batches are slices of
global batches that depend on the step only (so any process count sees the same global batch);
evaluation reads this process's shard of the first EVAL_CLIPS clips of the test split. Process 0 writes R.json: the logged train
losses, the step the run stopped at (or None), the final evaluation and a fingerprint of the final
parameters.
"""
import argparse
import json
import os
import re
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from vivit_jax import distributed  # noqa: E402

EVAL_CLIPS = 96  # Evaluated clips: 6 global batches of 16, split over the processes.


def _global_batches(config, start_step, sigterm_at=None):
  """This process's rows of deterministic global batches, the `start_step`-th first; the last
  process sends itself SIGTERM when it reads batch `sigterm_at`."""
  import jax
  import numpy as np

  from tests.helpers import random_batches
  b = config.train.batch_size // jax.process_count()
  rows = slice(jax.process_index() * b, (jax.process_index() + 1) * b)
  step = start_step
  while True:
    if step == sigterm_at and jax.process_index() == jax.process_count() - 1:
      os.kill(os.getpid(), signal.SIGTERM)
    batch = random_batches(config, 1, seed=step)[0]
    yield {k: np.asarray(v[rows]) for k, v in batch.items()}
    step += 1


def main():
  parser = argparse.ArgumentParser()
  for name in ('workdir', 'data_dir', 'out', 'coordinator'):
    parser.add_argument(f'--{name}')
  parser.add_argument('--num_processes', type=int)
  parser.add_argument('--process_id', type=int)
  parser.add_argument('--sigterm_at', type=int)
  args = parser.parse_args()
  distributed.initialize(args.coordinator, args.num_processes, args.process_id)

  import jax
  import numpy as np
  from jax.experimental import multihost_utils

  from tests.helpers import tiny_config
  from vivit_jax.train import loop
  config = tiny_config()
  config.dataset.update(data_dir=args.data_dir, eval_split=f'test[:{EVAL_CLIPS}]')
  config.train.update(batch_size=8, eval_batch_size=16, log_every_steps=1)
  config.checkpoint.update(every_steps=2)
  config.optimizer.eps = 1e-3  # As in tests/train/test_step.py: keeps Adam from amplifying the
                               # summation-order noise of ~0 gradients into full-size steps.
  sigterm_at = None
  loop.data.make_train_iterator = lambda ds, global_batch_size, seed, start_step: (
      _global_batches(config, start_step, sigterm_at))
  config.train.num_steps = 2
  loop.run(config, args.workdir)
  config.train.num_steps, sigterm_at, stopped_at = 8, args.sigterm_at, None
  try:
    results = loop.run(config, args.workdir)  # Resumes from the step-2 checkpoint.
  except loop.TrainingInterrupted as stop:
    stopped_at, sigterm_at = int(re.search(r'at step (\d+)', str(stop)).group(1)), None
    results = loop.run(config, args.workdir)  # Resumes from the checkpoint of the stop.

  exp = loop.restore_for_eval(config, args.workdir)
  params = jax.tree.leaves(multihost_utils.process_allgather(exp.state.params, tiled=True))
  if jax.process_index() == 0:
    with open(os.path.join(args.workdir, 'metrics.jsonl')) as f:
      lines = [json.loads(line) for line in f]
    losses = {l['step']: l['train/loss'] for l in lines if 'train/loss' in l}
    with open(args.out, 'w') as f:
      json.dump({'devices': jax.device_count(), 'processes': jax.process_count(),
                 'losses': losses, 'eval': {k: float(v) for k, v in results.items()},
                 'params': [float(np.abs(np.asarray(p, np.float64)).sum()) for p in params],
                 'step': int(exp.state.step), 'stopped_at': stopped_at}, f)


if __name__ == '__main__':
  main()
