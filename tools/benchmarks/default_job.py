"""What does the README's first command give? configs/default.py trained and evaluated once per
seed of --seeds: test top-1/top-5, the run's time (dataset reused if built, compile, 600 steps, 2
evaluations) and its training clips/s (median of the progress lines after the first), with the
versions of jax, flax and tensorflow and the machine's load average. About 9 minutes per seed on
2 CPU cores shared with other jobs.

  python tools/benchmark.py default_job [--seeds 0,1,...]
"""
import os

from tools.benchmarks.common import options, results, runs


def run(workdir: str, out: str) -> dict:
  """Trains and evaluates configs/default.py once per seed; returns the result record."""
  del out
  rows = []
  load_before = os.getloadavg()[0]
  for seed in map(int, options.SEEDS.value):
    config = runs.preset('configs/default.py', None)
    config.seed = seed
    run_dir = os.path.join(workdir, f'seed_{seed}')
    final, seconds = runs.timed_run(config, run_dir)
    rows.append(dict(seed=seed, top1=final['eval/top1'], top5=final['eval/top5'],
                     seconds=round(seconds, 1), clips_per_s=runs.train_clips_per_s(run_dir)))
  return dict(benchmark='default_job', config='configs/default.py',
              steps=config.train.num_steps, batch=config.train.batch_size,
              test_clips=int(final['eval/count']), runs=rows, versions=runs.versions(),
              machine=results.machine(), load_average=[round(load_before, 1),
                                                       round(os.getloadavg()[0], 1)])


def table(record: dict) -> str:
  rows = ['| seed | test top-1 | test top-5 | run time (s) | train clips/s |',
          '|---|---|---|---|---|']
  rows += [f"| {r['seed']} | {r['top1']:.4f} | {r['top5']:.4f} | {r['seconds']} | "
           f"{r['clips_per_s']} |" for r in record['runs']]
  top1 = [r['top1'] for r in record['runs']]
  v, load = record['versions'], record['load_average']
  shared = ' (other work shared the cores: an idle machine is faster)' if load[0] >= 1 else ''
  return '\n'.join([
      '# The default job (configs/default.py)', '',
      f"`python -m vivit_jax.main --config {record['config']} --workdir DIR --config.seed=S`: "
      f"{record['steps']} steps of batch {record['batch']}, then the final evaluation on "
      f"{record['test_clips']} test clips. Run time: the whole command (dataset reused, compile, "
      f"training, evaluations); clips/s: the median of the progress lines after the first.", '',
      *rows, '',
      f"Test top-1 over seeds: {min(top1):.4f}-{max(top1):.4f}. Versions: Python {v['python']}, "
      f"jax {v['jax']}, flax {v['flax']}, tensorflow {v['tensorflow']}. Machine: "
      f"{record['machine']}; 1-minute load average {load[0]} before, {load[1]} after{shared}.",
      '',
      'Regenerate: `python tools/benchmark.py default_job --seeds ' +
      ','.join(str(r['seed']) for r in record['runs']) + '`.', ''])


def write(record: dict, out: str) -> str:
  return results.write(record, out, table(record))
