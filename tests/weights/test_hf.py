"""Hugging Face checkpoints: `load_pretrained` + `models.build` match transformers' outputs."""
import json

import numpy as np
import pytest
import torch
import transformers

from vivit_jax import models
from vivit_jax.weights import hf

TIMESFORMER = dict(image_size=32, patch_size=8, num_hidden_layers=2, intermediate_size=64,
                   num_labels=5)
VIVIT = dict(num_hidden_layers=2, intermediate_size=64, num_labels=5)


def _hf_model(cls, seed: int, **config):
  """A random-weight transformers model: every tensor normal(0, 0.2), so none is left at zero."""
  torch.manual_seed(seed)
  defaults = TIMESFORMER if 'Timesformer' in cls.__name__ else VIVIT
  model = cls(cls.config_class(**dict(defaults, **config))).eval()
  with torch.no_grad():
    for p in model.parameters():
      p.normal_(std=0.2)
  return model


def _compare(model, tmp_path, num_frames: int, output, image_size=(32, 32)):
  """Max |ours - HF| on one random video (2, T, H, W, 3); HF's value is `output(model(x))`."""
  model.save_pretrained(tmp_path)
  config, variables = hf.load_pretrained(str(tmp_path))
  video = np.random.default_rng(0).normal(size=(2, num_frames, *image_size, 3)).astype(np.float32)
  ours = models.build(config).apply(variables, video, train=False)
  with torch.no_grad():
    reference = output(model(pixel_values=torch.from_numpy(video.transpose(0, 1, 4, 2, 3))))
  assert ours.shape == reference.shape and ours.dtype == np.float32
  assert np.abs(reference.numpy()).max() > 0.1
  return config, float(np.abs(np.asarray(ours) - reference.numpy()).max())


@pytest.mark.parametrize('config', [
    dict(num_frames=2, hidden_size=32, num_attention_heads=2, layer_norm_eps=1e-6,
         hidden_act='gelu', qkv_bias=True),
    dict(num_frames=4, hidden_size=48, num_attention_heads=4, layer_norm_eps=1e-12,
         hidden_act='gelu_new', qkv_bias=False),
    dict(num_frames=4, hidden_size=32, num_attention_heads=4, layer_norm_eps=1e-6,
         hidden_act='quick_gelu', qkv_bias=True),
])
def test_timesformer_for_video_classification_matches(config, tmp_path):
  model = _hf_model(transformers.TimesformerForVideoClassification, seed=0, **config)
  ours, diff = _compare(model, tmp_path, config['num_frames'], lambda out: out.logits)
  print(f'TimesformerForVideoClassification {config}: logits max-abs diff {diff:.2e}')
  assert ours.num_classes == 5 and ours.hidden_act == config['hidden_act']
  assert diff < 1e-4


def test_timesformer_model_gives_cls_features(tmp_path):
  """TimesformerModel (no classifier) -> num_classes 0: the final CLS token (B, D)."""
  config = dict(num_frames=2, hidden_size=48, num_attention_heads=2, layer_norm_eps=1e-12,
                hidden_act='gelu_pytorch_tanh', qkv_bias=True)
  model = _hf_model(transformers.TimesformerModel, seed=1, **config)
  ours, diff = _compare(model, tmp_path, 2, lambda out: out.last_hidden_state[:, 0])
  print(f'TimesformerModel {config}: last_hidden_state[:, 0] max-abs diff {diff:.2e}')
  assert ours.num_classes == 0
  assert diff < 1e-4


@pytest.mark.parametrize('config', [
    dict(num_frames=4, image_size=32, tubelet_size=[2, 8, 8], hidden_size=32,
         num_attention_heads=2),  # HF defaults otherwise: gelu_fast, eps 1e-6, qkv biases.
    dict(num_frames=3, image_size=[24, 40], tubelet_size=[1, 8, 4], hidden_size=48,
         num_attention_heads=4, hidden_act='gelu', layer_norm_eps=1e-12, qkv_bias=False),
    dict(num_frames=8, image_size=16, tubelet_size=[4, 4, 4], hidden_size=36,
         num_attention_heads=3, hidden_act='quick_gelu', layer_norm_eps=1e-5),
])
def test_vivit_for_video_classification_matches(config, tmp_path):
  model = _hf_model(transformers.VivitForVideoClassification, seed=2, **config)
  size = config['image_size']
  ours, diff = _compare(model, tmp_path, config['num_frames'], lambda out: out.logits,
                        tuple(size) if isinstance(size, list) else (size, size))
  print(f'VivitForVideoClassification {config}: logits max-abs diff {diff:.2e}')
  assert (ours.variant, ours.num_classes, ours.patch_size) == (
      'spatio_temporal', 5, tuple(config['tubelet_size']))
  assert diff < 1e-4


def test_vivit_model_gives_cls_features(tmp_path):
  """VivitModel (no classifier; its pooler is dropped) -> num_classes 0: the final CLS token."""
  config = dict(num_frames=4, image_size=32, tubelet_size=[2, 8, 8], hidden_size=32,
                num_attention_heads=4, hidden_act='gelu_new')
  model = _hf_model(transformers.VivitModel, seed=3, **config)
  ours, diff = _compare(model, tmp_path, 4, lambda out: out.last_hidden_state[:, 0])
  print(f'VivitModel {config}: last_hidden_state[:, 0] max-abs diff {diff:.2e}')
  assert ours.num_classes == 0
  assert diff < 1e-4


def test_unsupported_model_type_raises(tmp_path):
  (tmp_path / 'config.json').write_text(json.dumps({'model_type': 'bert'}))
  (tmp_path / 'model.safetensors').write_bytes(b'')
  with pytest.raises(ValueError, match="model_type 'bert' is not supported; supported: timesformer, vivit"):
    hf.load_pretrained(str(tmp_path))


def test_missing_files_raise(tmp_path):
  with pytest.raises(FileNotFoundError, match='config.json not found'):
    hf.load_pretrained(str(tmp_path))
