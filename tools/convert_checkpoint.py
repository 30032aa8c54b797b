r"""Converts a Hugging Face video model to an Orbax checkpoint that config.init_from.path accepts.

  python tools/convert_checkpoint.py --src HF_DIR --out DIR

HF_DIR is a `save_pretrained` directory (config.json + model.safetensors) of a model type that
`vivit_jax.weights.hf.load_pretrained` reads (e.g. TimesformerForVideoClassification). DIR gets
the params and the model config; the command prints the config.model fields to train with, e.g.

  python -m vivit_jax.main --config configs/default.py --workdir runs/ft \
    --config.init_from.path=DIR --config.model.name=timesformer ...
"""
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from absl import app, flags, logging  # noqa: E402
import ml_collections  # noqa: E402

_SRC = flags.DEFINE_string('src', None, 'Hugging Face save_pretrained directory.')
_OUT = flags.DEFINE_string('out', None, 'Output directory of the Orbax checkpoint.')


def convert(src: str, out: str) -> ml_collections.ConfigDict:
  """Writes `src`'s params and model config to the Orbax checkpoint `out`; returns the config."""
  from vivit_jax.saved import checkpoints  # pylint: disable=import-outside-toplevel
  from vivit_jax.weights import hf  # pylint: disable=import-outside-toplevel
  if os.path.exists(out) and os.listdir(out):
    raise FileExistsError(f'--out={out} is not empty; choose a new directory.')
  model_config, variables = hf.load_pretrained(src)
  checkpoints.save_params(out, variables['params'], model_config.to_dict())
  return model_config


def override_flags(model_config: ml_collections.ConfigDict) -> list[str]:
  """['--config.model.FIELD=VALUE', ...] for every field (tuples as '(a,b)')."""
  return [f"--config.model.{k}={v}" if not isinstance(v, (tuple, list))
          else f"--config.model.{k}='({','.join(map(str, v))})'"
          for k, v in model_config.items()]


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # Orbax logs every step of a save at INFO.
  model_config = convert(_SRC.value, _OUT.value)
  print(f'Wrote {_OUT.value}. Train from it with --config.init_from.path={_OUT.value} and these '
        f'config.model fields (num_classes: your dataset\'s; load_head=True keeps the classifier):')
  print(' \\\n'.join(override_flags(model_config)))


if __name__ == '__main__':
  flags.mark_flags_as_required(['src', 'out'])
  app.run(main)
