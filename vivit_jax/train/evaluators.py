"""Evaluation outputs besides the task's metrics, chosen by name: `config.evals` if the config has
it, else the task's `evals` (masked_video_modeling: ('reconstructions',)).

An evaluator is built as `EVALUATORS[name](exp, config, workdir)` (exp: train.loop.Experiment)
and called at every evaluation as `write(state, step_number)`, on every process (it may run
collective computations); it writes its files under the workdir and returns the path written.
"""
import logging
import math
import os

import flax.linen as nn
import jax
import ml_collections

from vivit_jax import data, models, visualize
from vivit_jax.train import sharding, step

log = logging.getLogger('vivit_jax')


class Reconstructions:
  """VideoMAE reconstruction grids (vivit_jax.visualize) of the first evaluation clips.

  `write(state, step_number)` runs the model on the mesh (every process must call it) on the
  first `num_examples` single-view (centre clip, centre crop) clips of config.dataset.eval_split,
  with the evaluation's fixed masking seed, and on process 0 writes
  WORKDIR/reconstructions/step_{N:06d}.png and logs its path; returns the path (None elsewhere).
  """

  def __init__(self, exp, config, workdir: str, *, num_examples: int = visualize.NUM_EXAMPLES):
    visualize.check_model(exp.model)
    self.exp, self.workdir, self.num_examples = exp, workdir, num_examples
    self.dataset = ml_collections.ConfigDict(config.dataset.to_dict())
    self.dataset.update(eval_clips=1, eval_crops=1)  # One example = one video.
    unit = math.lcm(sharding.batch_shards(exp.mesh, exp.rules), jax.process_count())
    self.batch_size = unit * -(-num_examples // unit)
    replicated = jax.sharding.NamedSharding(exp.mesh, jax.sharding.PartitionSpec())
    n = num_examples

    def forward(params, batch_stats, batch):
      out = exp.model.apply(step.variables(params, batch_stats), batch['video'], train=False,
                            rngs=models.eval_rngs(exp.model))
      kept = {k: out[k][:n] for k in ('pred', 'pred_index', 'mask')}
      return dict(kept, video=batch['video'][:n], valid=batch['mask'][:n])

    shardings = exp.state_shardings
    self._forward = jax.jit(forward, in_shardings=(shardings.params, shardings.batch_stats,
                                                   exp.batch_sharding),
                            out_shardings=replicated)

  def write(self, state, step_number: int) -> str | None:
    batch = next(data.make_eval_iterator(self.dataset, global_batch_size=self.batch_size))
    batch = sharding.put_batch({k: batch[k] for k in ('video', 'mask')}, self.exp.batch_sharding)
    with jax.set_mesh(self.exp.mesh), nn.logical_axis_rules(self.exp.rules):
      out = jax.device_get(self._forward(state.params, state.batch_stats, batch))
    if jax.process_index() != 0:
      return None
    valid = out.pop('valid') > 0  # Padding rows (a split smaller than the grid) are left out.
    if not valid.any():
      return None
    out = {k: v[valid] for k, v in out.items()}
    path = os.path.join(self.workdir, 'reconstructions', f'step_{step_number:06d}.png')
    visualize.write_png(path, visualize.render(self.exp.model, out.pop('video'), out))
    log.info('Reconstructions of %d %s clips at step %d: %s', int(valid.sum()),
             self.dataset.eval_split, step_number, path)
    return path


EVALUATORS = {'reconstructions': Reconstructions}


def build(names, exp, config, workdir: str) -> list:
  """The evaluators `names` (keys of EVALUATORS) for the experiment `exp`."""
  unknown = [n for n in names if n not in EVALUATORS]
  if unknown:
    raise ValueError(f"Unknown evaluator '{unknown[0]}' in config.evals; available: "
                     f"{', '.join(EVALUATORS)}.")
  return [EVALUATORS[name](exp, config, workdir) for name in names]
