r"""Evaluates a trained model on clips whose frames are all the middle frame.

  python tools/static_frame_probe.py --workdir runs/default [--config configs/X.py]

Prints top-1 on the real clips and on the static clips. On a dataset whose classes are
motions (synthetic_motion), the static score should sit near chance (1 / num_classes).
--config defaults to the config the training saved in the workdir (config.json).
"""
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from absl import app  # noqa: E402

from vivit_jax.saved import config as saved_config  # noqa: E402

_FLAGS = saved_config.define_workdir_flags()


def main(argv):
  del argv
  from vivit_jax.data import probes
  from vivit_jax.train import loop
  config = saved_config.flag_config(_FLAGS['config'])
  exp = loop.restore_for_eval(config, _FLAGS['workdir'].value)
  eval_step = exp.eval_step()
  clips = loop.evaluate(eval_step, exp.state, config, exp.batch_sharding)
  static = loop.evaluate(eval_step, exp.state, config, exp.batch_sharding,
                         transform=probes.repeat_middle_frame)
  print(f'step {int(exp.state.step)}: top-1 on clips {clips["eval/top1"]:.4f}; on the middle '
        f'frame repeated {config.dataset.num_frames} times {static["eval/top1"]:.4f} '
        f'(chance {1 / config.model.num_classes:.4f})')


if __name__ == '__main__':
  app.run(main)
