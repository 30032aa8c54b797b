r"""Converts a pretrained video model to an Orbax checkpoint that config.init_from.path accepts.

  python tools/convert_checkpoint.py --src HF_DIR --out DIR
  python tools/convert_checkpoint.py --src X3D_M.pyth --config configs/cnn/x3d_k400.py:M --out DIR

--src is a Hugging Face `save_pretrained` directory (config.json + model.safetensors) of a model
type that `vivit_jax.weights.hf.load_pretrained` reads (e.g. TimesformerForVideoClassification),
or a PyTorch model-zoo checkpoint file (.pyth, .pth, .pt, .safetensors; see the README's model
zoo), which --config names the architecture of (the preset that builds the same model). DIR gets
the variables (BatchNorm statistics included) and the model config; the command prints how to
fine-tune from it, e.g.

  python -m vivit_jax.main --config configs/default.py --workdir runs/ft \
    --config.init_from.path=DIR --config.model.name=timesformer ...

A PyTorch file can also be given to config.init_from.path directly; converting once saves
reading the pickle (and needing torch) on every run.
"""
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [] if REPO in sys.path else [REPO]  # configs/ import configs.common.

from absl import app, flags, logging  # noqa: E402
import ml_collections  # noqa: E402
from ml_collections import config_flags  # noqa: E402

_SRC = flags.DEFINE_string('src', None, 'Hugging Face save_pretrained directory, or a PyTorch '
                           'checkpoint file of a model zoo (.pyth, .pth, .pt, .safetensors).')
_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'For a PyTorch checkpoint: the preset whose config.model it is, e.g. '
    'configs/cnn/x3d_k400.py:M (--config.model.FIELD=VALUE overrides a field).')
_OUT = flags.DEFINE_string('out', None, 'Output directory of the Orbax checkpoint.')


def _read(src: str, config: ml_collections.ConfigDict | None
          ) -> tuple[ml_collections.ConfigDict, dict]:
  """(model config, variables) of `src`; a PyTorch checkpoint is read as `config.model`."""
  # pylint: disable=import-outside-toplevel
  from vivit_jax import models
  from vivit_jax.weights import hf, torch_checkpoint, torch_state
  if not src.endswith(torch_checkpoint.SUFFIXES):
    return hf.load_pretrained(src)
  if config is None:
    raise ValueError(f'--src={src} is a PyTorch checkpoint: give --config, the preset of its '
                     f'architecture (e.g. --config=configs/cnn/x3d_k400.py:M; the README\'s model '
                     f'zoo lists each).')
  model_config = config.model
  clip = (config.dataset.num_frames, config.dataset.crop_size, config.dataset.crop_size)
  variables = torch_checkpoint.to_variables(torch_state.read_state_dict(src),
                                            models.build(model_config), src, load_head=True,
                                            clip=clip)
  return model_config, variables


def convert(src: str, out: str,
            config: ml_collections.ConfigDict | None = None) -> ml_collections.ConfigDict:
  """Writes `src`'s variables and model config to the Orbax checkpoint `out`; returns the
  config."""
  from vivit_jax.saved import checkpoints  # pylint: disable=import-outside-toplevel
  if os.path.exists(out) and os.listdir(out):
    raise FileExistsError(f'--out={out} is not empty; choose a new directory.')
  model_config, variables = _read(src, config)
  checkpoints.save_variables(out, variables, model_config.to_dict())
  return model_config


def override_flags(model_config: ml_collections.ConfigDict) -> list[str]:
  """['--config.model.FIELD=VALUE', ...] for every field (tuples as '(a,b)')."""
  return [f"--config.model.{k}={v}" if not isinstance(v, (tuple, list))
          else f"--config.model.{k}='({','.join(map(str, v))})'"
          for k, v in model_config.items()]


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # Orbax logs every step of a save at INFO.
  model_config = convert(_SRC.value, _OUT.value, _CONFIG.value)
  if _CONFIG.value is not None:
    print(f'Wrote {_OUT.value}. Fine-tune from it with --config '
          f'{config_flags.get_config_filename(flags.FLAGS["config"])} '
          f'--config.init_from.path={_OUT.value} --config.model.num_classes=K (your dataset\'s '
          f'classes; the classifier is kept only with --config.init_from.load_head=True) and the '
          f'same --config.model overrides.')
    return
  print(f'Wrote {_OUT.value}. Train from it with --config.init_from.path={_OUT.value} and these '
        f'config.model fields (num_classes: your dataset\'s; load_head=True keeps the classifier):')
  print(' \\\n'.join(override_flags(model_config)))


if __name__ == '__main__':
  flags.mark_flags_as_required(['src', 'out'])
  app.run(main)
