"""`config.init_from`: start training from pretrained weights.

`config.init_from.path` is one of
  an image ViT: a Hugging Face `save_pretrained` directory with model_type 'vit', or a
    vision_transformer / big_vision `.npz` (see weights/vit.py; `kernel_init` applies);
  a Hugging Face model directory whose model_type is in `hf.READERS` (video models, and
    'resnet': a 2D ResNet);
  a PyTorch state dict file (`.pyth`, `.pth`, `.pt` or `.safetensors`): a torchvision 2D ResNet
    (weights/resnet2d.py), or a video model of a PyTorch zoo (weights/torch_checkpoint.py:
    torchvision's r3d/mc3/r2plus1d, PyTorchVideo / PySlowFast's model zoo) converted into the
    model config.model builds, which must be the checkpoint's architecture and size;
  an Orbax checkpoint: a vivit_jax workdir (the latest step of its `checkpoints/`) or the output
    of tools/convert_checkpoint.py (`saved.checkpoints.save_params`).
A source holds one model (`name`); it initialises a model of that name, or a model that fine-tunes
it (`FINE_TUNES`: a VideoMAE pre-training checkpoint initialises the 'videomae' classifier with its
encoder, the decoder dropped), or, for a 2D ResNet, a 'resnet3d' by inflation (weights/inflate.py;
`kernel_init` 'average' or 'central_frame'), BatchNorm statistics included.
`load_init_variables` merges what it holds into the fresh variables (params and batch_stats): the
classifier `head` only if `load_head`, and every leaf the source lacks stays fresh (counted in the
log line). Blocks are merged unrolled (`block_i`) and stacked again for a model with
config.model.scan_layers (models/scan.py), so every source fits either layout.
"""
import json
import logging
import os
from typing import Any, Sequence

import ml_collections
import numpy as np
from flax import traverse_util
from tensorflow.io import gfile

from vivit_jax import models
from vivit_jax.models import scan, videomae
from vivit_jax.saved import checkpoints
from vivit_jax.weights import hf, inflate, resnet2d, torch_checkpoint, torch_state, vit

log = logging.getLogger('vivit_jax')
Params = dict[str, Any]
Variables = dict[str, Params]
# (source model name, fine-tuned model name) -> (source params, fine-tuned model config) -> params.
FINE_TUNES = {('videomae_pretrain', 'videomae'): videomae.encoder_params}


def source_kind(path: str) -> str:
  """'vit', 'hf' (a Hugging Face model in hf.READERS), 'torch' (a PyTorch state dict file) or
  'orbax': what config.init_from.path holds."""
  if path.endswith('.npz'):
    return 'vit'
  if path.endswith(torch_checkpoint.SUFFIXES):
    if not gfile.exists(path):
      raise FileNotFoundError(f'config.init_from.path={path} does not exist.')
    return 'torch'
  if not gfile.isdir(path):
    raise FileNotFoundError(f'config.init_from.path={path} does not exist.')
  if checkpoints.checkpoint_dir(path):  # Before config.json: a vivit_jax workdir saves one too.
    return 'orbax'
  config_path = os.path.join(path, 'config.json')
  if gfile.exists(config_path):
    with gfile.GFile(config_path) as f:
      model_type = json.load(f).get('model_type')
    if model_type == 'vit':
      return 'vit'
    if model_type in hf.READERS:
      return 'hf'
    raise ValueError(f"{config_path}: model_type '{model_type}' cannot initialise a model; "
                     f"supported: vit, {', '.join(hf.READERS)}.")
  raise ValueError(f'config.init_from.path={path} is neither a Hugging Face save_pretrained '
                   f'directory (config.json), an image ViT .npz, a PyTorch state dict '
                   f'({", ".join(torch_checkpoint.SUFFIXES)}), a vivit_jax workdir nor an Orbax '
                   f'checkpoint written by tools/convert_checkpoint.py.')


def merge_params(fresh: Params, loaded: Params, *, load_head: bool, source: str,
                 hint: str = '') -> tuple[Params, list[str]]:
  """`fresh` with the leaves of `loaded` (the `head` only if load_head), cast to the fresh leaves'
  dtypes; returns (params, the names of the leaves left fresh).

  Raises ValueError if a loaded leaf is not in the model or has another shape.
  """
  flat = traverse_util.flatten_dict(fresh, sep='/')
  new = {k: v for k, v in traverse_util.flatten_dict(loaded, sep='/').items()
         if load_head or not k.startswith('head/')}
  unknown = sorted(k for k in new if k not in flat)
  reshaped = sorted(k for k in new if k in flat and np.shape(new[k]) != np.shape(flat[k]))
  if unknown or reshaped:
    problems = []
    if unknown:
      problems.append(f'{len(unknown)} parameters not in the model (e.g. {unknown[:3]})')
    if reshaped:
      k = reshaped[0]
      problems.append(f'{len(reshaped)} of other shapes (e.g. {k}: {np.shape(new[k])}, model '
                      f'{np.shape(flat[k])})')
    fix = hint or ('set the config.model fields it was trained with (tools/convert_checkpoint.py '
                   'prints them for Hugging Face models)')
    head = ', or config.init_from.load_head=False' if any(
        k.startswith('head/') for k in unknown + reshaped) else ''
    raise ValueError(f'{source} does not fit config.model: {"; ".join(problems)}. Fix: '
                     f'{fix}{head}.')
  left_fresh = sorted(set(flat) - set(new))
  flat.update({k: np.asarray(v, np.dtype(flat[k].dtype)) for k, v in new.items()})
  return traverse_util.unflatten_dict(flat, sep='/'), left_fresh


def _config_hint(saved: dict, model_config: ml_collections.ConfigDict) -> str:
  """'set --config.model.F=V ...' for the fields where `saved` (a model config) differs."""
  ours = model_config.to_dict()
  diff = [f'--config.model.{k}={v}' for k, v in sorted(saved.items())
          if k != 'num_classes' and k in ours
          and json.dumps(ours[k], default=list) != json.dumps(v, default=list)]
  return f'set {" ".join(diff)}' if diff else ''


def _inflation(path: str, saved: dict, model_config: ml_collections.ConfigDict):
  """Raises unless the 2D ResNet `saved` has config.model's depth and base_width."""
  diff = [f'--config.model.{k}={saved[k]}' for k in ('depth', 'base_width')
          if model_config.get(k) != saved[k]]
  if diff:
    raise ValueError(f'{path} holds a 2D ResNet-{saved["depth"]} of base width '
                     f'{saved["base_width"]}, which does not inflate into config.model: set '
                     f'{" ".join(diff)}.')


def load_init_variables(init_from: ml_collections.ConfigDict,
                        model_config: ml_collections.ConfigDict, fresh: Variables,
                        video_shape: Sequence[int]) -> Variables:
  """`fresh` ({'params': ..., optionally 'batch_stats': ...} of `models.build(model_config)` on
  videos (T, H, W)) with the weights at `init_from.path` merged in (see the module docstring);
  logs one line saying what was loaded."""
  path, kind = init_from.path, source_kind(init_from.path)
  fresh = scan.unstack(fresh)
  saved = None
  if kind == 'vit':
    loaded = {'params': vit.video_params(
        vit.read_vit(path), model_config, video_shape=video_shape,
        kernel_init=init_from.kernel_init, load_head=init_from.load_head)}
  elif kind == 'hf':
    saved, loaded = hf.load_pretrained(path)
    saved = saved.to_dict()
  elif kind == 'torch':
    state_dict = torch_state.read_state_dict(path)
    if resnet2d.is_torchvision_resnet(state_dict):
      saved, loaded = resnet2d.from_torchvision(state_dict, path)
      saved = saved.to_dict()
    else:
      loaded = torch_checkpoint.to_variables(state_dict, models.build(model_config), path,
                                             load_head=init_from.load_head, clip=video_shape)
  else:
    saved, loaded = checkpoints.restore_variables(path)
    loaded = scan.unstack(loaded)
  if saved is not None and saved['name'] != model_config.name:
    if (saved['name'], model_config.name) == ('resnet2d', 'resnet3d'):
      _inflation(path, saved, model_config)
      if not init_from.load_head:
        loaded['params'] = {k: v for k, v in loaded['params'].items() if k != 'head'}
      loaded = inflate.inflate_resnet(loaded, fresh, init_from.kernel_init)
    else:
      convert = FINE_TUNES.get((saved['name'], model_config.name))
      if convert is None:
        targets = [saved['name']] + [b for a, b in FINE_TUNES if a == saved['name']]
        targets += ['resnet3d'] * (saved['name'] == 'resnet2d')
        raise ValueError(f"{path} holds a '{saved['name']}' model but config.model.name="
                         f"'{model_config.name}': set --config.model.name to one of "
                         f"{', '.join(targets)} (and the fields it was trained with).")
      loaded = {'params': convert(loaded['params'], model_config)}
  hint = _config_hint(saved, model_config) if saved else ''
  variables, left_fresh = {}, []
  for collection in sorted(set(fresh) | set(loaded), key=lambda c: c != 'params'):
    variables[collection], fresh_names = merge_params(
        fresh.get(collection, {}), loaded.get(collection, {}), load_head=init_from.load_head,
        source=path, hint=hint)
    left_fresh += [n if collection == 'params' else f'{collection}/{n}' for n in fresh_names]
  total = sum(len(traverse_util.flatten_dict(v)) for v in variables.values())
  log.info('Initialised %d of %d parameter arrays from %s (%s); %d left fresh%s', total -
           len(left_fresh), total, path, kind, len(left_fresh),
           f' (e.g. {", ".join(left_fresh[:4])})' if left_fresh else '')
  return scan.stack(variables) if model_config.get('scan_layers', False) else variables
