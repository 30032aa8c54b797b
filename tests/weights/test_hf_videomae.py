"""Hugging Face VideoMAE checkpoints: `load_pretrained` + `models.build` match transformers.

transformers 5.x `save_pretrained` writes the q/v biases as `attention.attention.q_bias`/`v_bias`
(the v4 names); `_respell` rewrites a saved file to the `query.bias`/`value.bias` spelling, so
both are read.
"""
import json
import os

import jax
import numpy as np
import pytest
import torch
import transformers
from safetensors.numpy import load_file, save_file

from vivit_jax import models
from vivit_jax.models import masking
from vivit_jax.weights import hf

TINY = dict(num_hidden_layers=2, intermediate_size=64, decoder_num_hidden_layers=2,
            decoder_hidden_size=24, decoder_num_attention_heads=2, decoder_intermediate_size=40)


def _hf_model(cls, seed: int, **config):
  """A random-weight transformers model: every tensor normal(0, 0.2), so none is left at zero."""
  torch.manual_seed(seed)
  model = cls(transformers.VideoMAEConfig(**dict(TINY, **config))).eval()
  with torch.no_grad():
    for p in model.parameters():
      p.normal_(std=0.2)
  return model


def _respell(path, to: str):
  """Renames the q/v bias tensors of a saved model to `to` ('v5': query.bias, 'v4': q_bias)."""
  file = os.path.join(path, 'model.safetensors')
  names = {'.attention.attention.q_bias': '.attention.attention.query.bias',
           '.attention.attention.v_bias': '.attention.attention.value.bias'}
  if to == 'v4':
    names = {v: k for k, v in names.items()}
  arrays = load_file(file)
  renamed = {}
  for key, value in arrays.items():
    for old, new in names.items():
      if key.endswith(old):
        key = key[:-len(old)] + new
    renamed[key] = value
  save_file(renamed, file, metadata={'format': 'pt'})
  return sorted(set(arrays) - set(renamed))


def _load(model, tmp_path, spelling: str):
  model.save_pretrained(tmp_path)
  keys = load_file(os.path.join(tmp_path, 'model.safetensors'))
  spelled = any(k.endswith('q_bias') for k in keys)
  if model.config.qv_bias:
    assert spelled, 'transformers no longer writes q_bias: update _respell'
    changed = _respell(tmp_path, spelling)
    assert bool(changed) == (spelling == 'v5')
  return hf.load_pretrained(str(tmp_path))


def _video(config: dict, seed: int = 0):
  size = config.get('image_size', 224)
  h, w = size if isinstance(size, list) else (size, size)
  rng = np.random.default_rng(seed)
  return rng.normal(size=(2, config['num_frames'], h, w, config.get('num_channels', 3))
                    ).astype(np.float32)


def _torch_input(video):
  return torch.from_numpy(video.transpose(0, 1, 4, 2, 3).copy())


CLASSIFICATION = [
    dict(num_frames=4, image_size=16, patch_size=4, tubelet_size=2, hidden_size=32,
         num_attention_heads=2),  # HF defaults otherwise: gelu, eps 1e-12, qv biases, mean pool.
    dict(num_frames=3, image_size=[8, 16], patch_size=4, tubelet_size=1, hidden_size=48,
         num_attention_heads=4, hidden_act='gelu_new', layer_norm_eps=1e-6, qv_bias=False,
         use_mean_pooling=False),
    dict(num_frames=8, image_size=12, patch_size=6, tubelet_size=4, hidden_size=36,
         num_attention_heads=3, hidden_act='quick_gelu', layer_norm_eps=1e-5,
         use_mean_pooling=False),
    dict(num_frames=4, image_size=16, patch_size=8, tubelet_size=2, hidden_size=32,
         num_attention_heads=4, hidden_act='relu', layer_norm_eps=1e-6),
]


@pytest.mark.parametrize('spelling', ['v4', 'v5'])
@pytest.mark.parametrize('index', range(len(CLASSIFICATION)))
def test_videomae_for_video_classification_matches(index, spelling, tmp_path):
  config = dict(CLASSIFICATION[index], num_labels=5)
  model = _hf_model(transformers.VideoMAEForVideoClassification, seed=index, **config)
  ours, variables = _load(model, tmp_path, spelling)
  assert (ours.name, ours.num_classes, ours.use_mean_pooling) == (
      'videomae', 5, config.get('use_mean_pooling', True))
  video = _video(config)
  logits = models.build(ours).apply(variables, video, train=False)
  with torch.no_grad():
    reference = model(pixel_values=_torch_input(video)).logits.numpy()
  assert logits.shape == reference.shape == (2, 5) and logits.dtype == np.float32
  assert np.abs(reference).max() > 0.1
  diff = float(np.abs(np.asarray(logits) - reference).max())
  print(f'VideoMAEForVideoClassification {config} ({spelling}): logits max-abs diff {diff:.2e}')
  assert diff < 1e-4


@pytest.mark.parametrize('use_mean_pooling', [True, False])
def test_videomae_model_gives_features(use_mean_pooling, tmp_path):
  """VideoMAEModel -> num_classes 0: last_hidden_state.mean(1) (mean pooling, no fc_norm: the
  base model has none) or, with use_mean_pooling=False, last_hidden_state[:, 0] (after its
  final layernorm)."""
  config = dict(num_frames=4, image_size=16, patch_size=4, tubelet_size=2, hidden_size=32,
                num_attention_heads=4, hidden_act='gelu', layer_norm_eps=1e-6,
                use_mean_pooling=use_mean_pooling)
  model = _hf_model(transformers.VideoMAEModel, seed=7, **config)
  ours, variables = _load(model, tmp_path, 'v4')
  assert ours.num_classes == 0 and not ours.fc_norm
  video = _video(config)
  features = models.build(ours).apply(variables, video, train=False)
  with torch.no_grad():
    hidden = model(pixel_values=_torch_input(video)).last_hidden_state
  reference = (hidden.mean(1) if use_mean_pooling else hidden[:, 0]).numpy()
  assert features.shape == reference.shape == (2, 32)
  diff = float(np.abs(np.asarray(features) - reference).max())
  print(f'VideoMAEModel use_mean_pooling={use_mean_pooling}: features max-abs diff {diff:.2e}')
  assert diff < 1e-4


PRETRAINING = [
    dict(num_frames=4, image_size=16, patch_size=4, tubelet_size=2, hidden_size=32,
         num_attention_heads=2),  # norm_pix_loss, mean pooling (no encoder norm), eps 1e-12.
    dict(num_frames=4, image_size=[8, 16], patch_size=4, tubelet_size=1, hidden_size=48,
         num_attention_heads=4, hidden_act='gelu_new', layer_norm_eps=1e-6, qv_bias=False,
         use_mean_pooling=False, norm_pix_loss=False, decoder_hidden_size=16,
         decoder_num_attention_heads=4, decoder_num_hidden_layers=1),
    dict(num_frames=6, image_size=12, patch_size=6, tubelet_size=3, hidden_size=36,
         num_attention_heads=3, hidden_act='quick_gelu', layer_norm_eps=1e-5,
         use_mean_pooling=False, norm_pix_loss=True, decoder_hidden_size=32,
         decoder_num_attention_heads=8, decoder_intermediate_size=48),
]


@pytest.mark.parametrize('spelling', ['v4', 'v5'])
@pytest.mark.parametrize('index', range(len(PRETRAINING)))
def test_videomae_for_pretraining_matches(index, spelling, tmp_path):
  """Same tube mask in both: our loss equals HF's loss, our pred HF's logits."""
  config = PRETRAINING[index]
  model = _hf_model(transformers.VideoMAEForPreTraining, seed=10 + index, **config)
  ours, variables = _load(model, tmp_path, spelling)
  assert ours.name == 'videomae_pretrain'
  assert ours.norm_pix_loss == config.get('norm_pix_loss', True)
  assert ours.encoder_norm == (not config.get('use_mean_pooling', True))
  video = _video(config, seed=index)
  size = config['image_size']
  h, w = size if isinstance(size, list) else (size, size)
  grid = (config['num_frames'] // config['tubelet_size'], h // config['patch_size'],
          w // config['patch_size'])
  ours.mask_ratio = 0.75
  mask = np.asarray(masking.tube_mask(jax.random.key(index), 2, grid, 0.75))
  assert mask.sum(1).tolist() == [grid[0] * round(0.75 * grid[1] * grid[2])] * 2
  out = models.build(ours).apply(variables, video, train=False, mask=mask)
  with torch.no_grad():
    reference = model(pixel_values=_torch_input(video), bool_masked_pos=torch.from_numpy(mask.copy()))
  pred, logits = np.asarray(out['pred']), reference.logits.numpy()
  assert pred.shape == logits.shape and np.abs(logits).max() > 0.1
  np.testing.assert_array_equal(out['pred_index'], np.nonzero(mask)[1].reshape(2, -1))
  pred_diff = float(np.abs(pred - logits).max())
  loss_rel = abs(float(out['loss']) - reference.loss.item()) / reference.loss.item()
  print(f'VideoMAEForPreTraining {config} ({spelling}): loss {float(out["loss"]):.6f} vs '
        f'{reference.loss.item():.6f}, relative diff {loss_rel:.2e}; pred max-abs diff '
        f'{pred_diff:.2e}')
  assert pred_diff < 1e-4
  assert loss_rel < 1e-5


def test_videomae_architecture_read_from_tensors(tmp_path):
  """Without `architectures` in config.json the tensors tell the three classes apart."""
  config = dict(num_frames=2, image_size=8, patch_size=4, tubelet_size=2, hidden_size=16,
                num_attention_heads=2, num_labels=3)
  for cls, name, num_classes in (
      (transformers.VideoMAEForVideoClassification, 'videomae', 3),
      (transformers.VideoMAEModel, 'videomae', 0),
      (transformers.VideoMAEForPreTraining, 'videomae_pretrain', None)):
    path = tmp_path / cls.__name__
    _hf_model(cls, seed=0, **config).save_pretrained(path)
    config_file = path / 'config.json'
    config_json = json.loads(config_file.read_text())
    del config_json['architectures']
    config_file.write_text(json.dumps(config_json))
    ours, _ = hf.load_pretrained(str(path))
    assert ours.name == name
    if num_classes is not None:
      assert ours.num_classes == num_classes
