"""Image ViT -> ViViT / TimeSformer: on a video of one repeated image they equal the ViT."""
import functools
import logging

import jax
import ml_collections
import numpy as np
import pytest
import tensorflow as tf
import torch
import transformers
from flax import traverse_util
from safetensors.numpy import load_file

from vivit_jax import models
from vivit_jax.models import encoder
from vivit_jax.weights import vit

VIT = dict(image_size=16, patch_size=4, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
           intermediate_size=64, num_labels=5, layer_norm_eps=1e-6, hidden_act='gelu')
SIZES = dict(hidden_size=32, num_layers=2, num_heads=4, mlp_dim=64)


def _vivit_config(**overrides) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({**dict(
      name='vivit', variant='spatio_temporal', num_classes=5, patch_size=(2, 4, 4),
      dropout_rate=0.0, attention_dropout_rate=0.0, stochastic_depth=0.0, classifier='token',
      attention_impl='xla', dtype='float32', param_dtype='float32', **SIZES), **overrides})


def _timesformer_config(num_frames: int) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      name='timesformer', num_classes=5, num_frames=num_frames, image_size=16, patch_size=4,
      dropout_rate=0.0, attention_dropout_rate=0.0, stochastic_depth=0.0, attention_impl='xla',
      dtype='float32', param_dtype='float32', **SIZES))


def save_hf_vit(directory, seed: int = 0) -> transformers.ViTForImageClassification:
  """A random ViTForImageClassification (every tensor normal(0, 0.2)) saved to `directory`."""
  torch.manual_seed(seed)
  model = transformers.ViTForImageClassification(transformers.ViTConfig(**VIT)).eval()
  with torch.no_grad():
    for p in model.parameters():
      p.normal_(std=0.2)
  model.save_pretrained(directory)
  return model


def hf_to_npz(hf_dir, npz_path, layout: str = 'vision_transformer', prefix: str = ''):
  """Writes the HF ViT at `hf_dir` as a vision_transformer / big_vision .npz."""
  t = {k.removeprefix('vit.'): v for k, v in load_file(f'{hf_dir}/model.safetensors').items()}
  pos, attn, norm2, mlp = vit.NPZ_LAYOUTS[layout]
  heads, width = VIT['num_attention_heads'], VIT['hidden_size']
  proj = 'embeddings.patch_embeddings.projection'
  out = {'embedding/kernel': t[f'{proj}.weight'].transpose(2, 3, 1, 0),
         'embedding/bias': t[f'{proj}.bias'],
         'cls': t['embeddings.cls_token'], pos: t['embeddings.position_embeddings'],
         'head/kernel': t['classifier.weight'].T, 'head/bias': t['classifier.bias']}
  for theirs, ours in (('layernorm', 'Transformer/encoder_norm'),
                       *((f'encoder.layer.{i}.layernorm_before',
                          f'Transformer/encoderblock_{i}/LayerNorm_0') for i in range(2)),
                       *((f'encoder.layer.{i}.layernorm_after',
                          f'Transformer/encoderblock_{i}/{norm2}') for i in range(2))):
    out.update({f'{ours}/scale': t[f'{theirs}.weight'], f'{ours}/bias': t[f'{theirs}.bias']})
  for i in range(2):
    hf_block, block = f'encoder.layer.{i}', f'Transformer/encoderblock_{i}'
    for n in ('query', 'key', 'value'):
      out[f'{block}/{attn}/{n}/kernel'] = t[f'{hf_block}.attention.attention.{n}.weight'].T.reshape(
          width, heads, -1)
      out[f'{block}/{attn}/{n}/bias'] = t[f'{hf_block}.attention.attention.{n}.bias'].reshape(
          heads, -1)
    out[f'{block}/{attn}/out/kernel'] = t[f'{hf_block}.attention.output.dense.weight'].T.reshape(
        heads, -1, width)
    out[f'{block}/{attn}/out/bias'] = t[f'{hf_block}.attention.output.dense.bias']
    for j, name in enumerate(('intermediate.dense', 'output.dense')):
      out[f'{block}/{mlp}/Dense_{j}/kernel'] = t[f'{hf_block}.{name}.weight'].T
      out[f'{block}/{mlp}/Dense_{j}/bias'] = t[f'{hf_block}.{name}.bias']
  np.savez(npz_path, **{prefix + k: v for k, v in out.items()})


@pytest.fixture(scope='module')
def hf_vit(tmp_path_factory):
  """(directory, torch model) of a tiny random HF ViT, and its logits on 2 images (2, 16, 16, 3)."""
  directory = tmp_path_factory.mktemp('vit')
  model = save_hf_vit(directory)
  images = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype(np.float32)
  with torch.no_grad():
    logits = model(pixel_values=torch.from_numpy(images.transpose(0, 3, 1, 2))).logits.numpy()
  assert np.abs(logits).max() > 0.1
  return str(directory), images, logits


def _static_logits(config, params, images, num_frames):
  """Logits of `config`'s model on videos whose num_frames frames are all `images`."""
  video = np.repeat(images[:, None], num_frames, axis=1)
  apply = jax.jit(functools.partial(models.build(config).apply, train=False))
  return np.asarray(apply({'params': params}, video))


@pytest.mark.parametrize('kernel_init', ['central_frame', 'average'])
def test_vivit_on_static_video_equals_vit(hf_vit, kernel_init):
  path, images, reference = hf_vit
  config = _vivit_config()
  params = vit.init_from_vit(config, path, video_shape=(2, 16, 16), kernel_init=kernel_init,
                             load_head=True)
  diff = np.abs(_static_logits(config, params, images, 2) - reference).max()
  print(f'ViViT Model 1 ({kernel_init}) vs HF ViT: logits max-abs diff {diff:.2e}')
  assert diff < 1e-4


@pytest.mark.parametrize('num_frames', [1, 3])
def test_timesformer_on_static_video_equals_vit(hf_vit, num_frames):
  path, images, reference = hf_vit
  config = _timesformer_config(num_frames)
  params = vit.init_from_vit(config, path, load_head=True)
  diff = np.abs(_static_logits(config, params, images, num_frames) - reference).max()
  print(f'TimeSformer ({num_frames} frames) vs HF ViT: logits max-abs diff {diff:.2e}')
  assert diff < 1e-4
  assert not params['time_embedding'].any()
  assert not params['encoder']['block_0']['temporal_dense']['kernel'].any()


@pytest.mark.parametrize('layout,prefix', [('vision_transformer', ''),
                                           ('big_vision', 'params/')])
def test_npz_gives_the_same_params(hf_vit, tmp_path, layout, prefix):
  path = hf_vit[0]
  hf_to_npz(path, tmp_path / 'vit.npz', layout, prefix)
  from_hf, from_npz = vit.read_vit(path), vit.read_vit(str(tmp_path / 'vit.npz'))
  assert jax.tree.structure(from_hf.params) == jax.tree.structure(from_npz.params)
  assert all(jax.tree.leaves(jax.tree.map(np.array_equal, from_hf.params, from_npz.params)))
  assert from_npz.hidden_act == 'gelu_new' and from_npz.sizes() == SIZES


def test_npz_from_a_bucket(hf_vit, tmp_path):
  """A .npz on any tf.io.gfile file system (ram:// stands in for gs://vit_models/...)."""
  hf_to_npz(hf_vit[0], tmp_path / 'vit.npz')
  remote = f'ram://{tmp_path.name}/ViT.npz'
  tf.io.gfile.copy(str(tmp_path / 'vit.npz'), remote)
  local, from_bucket = vit.read_vit(str(tmp_path / 'vit.npz')), vit.read_vit(remote)
  assert all(jax.tree.leaves(jax.tree.map(np.array_equal, local.params, from_bucket.params)))
  with pytest.raises(FileNotFoundError, match='not found: expected an image ViT .npz'):
    vit.read_vit(f'ram://{tmp_path.name}/missing.npz')


def test_npz_warns_about_its_activation(hf_vit, tmp_path, caplog):
  hf_to_npz(hf_vit[0], tmp_path / 'vit.npz')
  with caplog.at_level(logging.WARNING, 'vivit_jax'):
    vit.video_params(vit.read_vit(str(tmp_path / 'vit.npz')), _vivit_config(),
                     video_shape=(2, 16, 16))
  assert 'hidden_act=gelu_new but config.model.hidden_act=gelu' in caplog.text


def test_pos_table_repeats_and_resizes(hf_vit):
  image_vit = vit.read_vit(hf_vit[0])
  table = image_vit.params['pos_embedding']['embedding']  # (1, 1 + 4 * 4, 32)
  tiled = vit.pos_table(image_vit, (4, 4), 3, with_cls=True)
  assert tiled.shape == (1, 1 + 3 * 16, 32)
  np.testing.assert_array_equal(tiled[0, 0], table[0, 0])
  for frame in np.split(tiled[0, 1:], 3):
    np.testing.assert_array_equal(frame, table[0, 1:])
  resized = vit.pos_table(image_vit, (6, 2), 2, with_cls=False)  # 'gap': no class token row.
  assert resized.shape == (1, 2 * 12, 32)
  constant = np.full((4, 4, 32), 0.7, np.float32)
  np.testing.assert_allclose(vit.resize_grid(constant, (7, 3)), 0.7, rtol=1e-6)
  ramp = np.broadcast_to(np.arange(4, dtype=np.float32)[:, None, None], (4, 4, 1))
  np.testing.assert_allclose(vit.resize_grid(ramp, (8, 4))[:, 0, 0],  # Half-pixel centres.
                             np.clip((np.arange(8) + 0.5) / 2 - 0.5, 0, 3), atol=1e-6)


def test_kernel_inits():
  kernel = np.random.default_rng(0).normal(size=(4, 4, 3, 8)).astype(np.float32)
  average = vit.inflate_kernel(kernel, 3, 'average')
  central = vit.inflate_kernel(kernel, 4, 'central_frame')
  assert average.shape == (3, 4, 4, 3, 8) and central.shape == (4, 4, 4, 3, 8)
  np.testing.assert_allclose(average.sum(axis=0), kernel, rtol=1e-6)
  np.testing.assert_allclose(average[0], average[2])
  np.testing.assert_array_equal(central[2], kernel)
  assert not np.delete(central, 2, axis=0).any()


def test_random_kernel_init_keeps_the_fresh_embedding(hf_vit):
  config = _vivit_config()
  fresh = vit.fresh_params(config, (2, 16, 16))
  params = vit.init_from_vit(config, hf_vit[0], video_shape=(2, 16, 16), kernel_init='random',
                             fresh=fresh)
  np.testing.assert_array_equal(params['embedding']['proj']['kernel'],
                                fresh['embedding']['proj']['kernel'])
  # load_head=False keeps the fresh head.
  np.testing.assert_array_equal(params['head']['kernel'], fresh['head']['kernel'])


def test_factorised_encoder_fills_the_spatial_encoder_only(hf_vit):
  config = _vivit_config(variant='factorised_encoder', num_temporal_layers=1)
  fresh = vit.fresh_params(config, (4, 16, 16))
  params = vit.init_from_vit(config, hf_vit[0], video_shape=(4, 16, 16), fresh=fresh)
  image_vit = vit.read_vit(hf_vit[0]).params
  np.testing.assert_array_equal(params['spatial_pos_embedding']['embedding'],
                                image_vit['pos_embedding']['embedding'])  # Not repeated.
  np.testing.assert_array_equal(params['spatial_encoder']['block_1']['mlp']['fc2']['kernel'],
                                image_vit['encoder']['block_1']['mlp']['fc2']['kernel'])
  np.testing.assert_array_equal(params['spatial_cls']['token'], image_vit['cls']['token'])
  for name in ('temporal_encoder', 'temporal_pos_embedding', 'temporal_cls', 'head'):
    assert all(jax.tree.leaves(jax.tree.map(np.array_equal, params[name], fresh[name]))), name


def test_factorised_self_attention_block_starts_as_the_image_block(hf_vit):
  config = _vivit_config(variant='factorised_self_attention', classifier='gap')
  params = vit.init_from_vit(config, hf_vit[0], video_shape=(4, 16, 16))
  assert params['pos_embedding']['embedding'].shape == (1, 2 * 16, 32)  # No class token.
  block = params['encoder']['block_0']
  assert not block['temporal_attn']['out']['kernel'].any()
  assert block['temporal_attn']['query']['kernel'].any()  # Only the out projection is zero.
  image_block = vit.read_vit(hf_vit[0]).params['encoder']['block_0']
  spec = encoder.BlockSpec(num_heads=4, mlp_dim=64, attention_impl='xla')
  frame = np.random.default_rng(1).normal(size=(2, 16, 32)).astype(np.float32)
  tokens = np.tile(frame, (1, 2, 1))  # Two identical frames of 16 tokens, ordered (frame, pos).
  video_block = encoder.EncoderBlock(spec=spec, factorisation='self_attention', num_frames=2)
  video_out = jax.jit(video_block.apply, static_argnames='train')({'params': block}, tokens,
                                                                  train=False)
  image_out = jax.jit(encoder.EncoderBlock(spec=spec).apply, static_argnames='train')(
      {'params': image_block}, frame, train=False)
  np.testing.assert_allclose(video_out, np.tile(image_out, (1, 2, 1)), atol=1e-5)


@pytest.mark.parametrize('variant,tokenizer,patch,classifier,num_tokens', [
    ('factorised_dot_product', 'tubelet', (2, 4, 4), 'gap', 2 * 16),
    ('spatio_temporal', 'frame', (4, 4), 'token', 1 + 4 * 16),
])
def test_other_variants_take_every_image_weight(hf_vit, variant, tokenizer, patch, classifier,
                                                num_tokens):
  config = _vivit_config(variant=variant, tokenizer=tokenizer, patch_size=patch,
                         classifier=classifier)
  image_vit = vit.read_vit(hf_vit[0])
  loaded = vit.video_params(image_vit, config, video_shape=(4, 16, 16))
  flat = traverse_util.flatten_dict(loaded, sep='/')
  encoder = traverse_util.flatten_dict(image_vit.params['encoder'], sep='/')
  assert all(np.array_equal(flat[f'encoder/{k}'], v) for k, v in encoder.items())
  assert flat['embedding/proj/kernel'].shape == (1 if tokenizer == 'frame' else 2, 4, 4, 3, 32)
  assert flat['pos_embedding/embedding'].shape == (1, num_tokens, 32)


@pytest.mark.parametrize('overrides,message', [
    (dict(hidden_size=48), 'hidden_size=32, but config.model.hidden_size=48: set '
                           '--config.model.hidden_size=32'),
    (dict(num_layers=3), 'set --config.model.num_layers=2'),
    (dict(patch_size=(2, 8, 8)), r'set the spatial patch size to \(4, 4\)'),
    (dict(num_classes=7), 'config.init_from.load_head=False'),
])
def test_mismatches_raise(hf_vit, overrides, message):
  with pytest.raises(ValueError, match=message):
    vit.video_params(vit.read_vit(hf_vit[0]), _vivit_config(**overrides), video_shape=(2, 16, 16),
                     load_head=True)


def test_not_a_vit_raises(tmp_path):
  with pytest.raises(FileNotFoundError, match='config.json not found'):
    vit.read_vit(str(tmp_path))
  (tmp_path / 'config.json').write_text('{"model_type": "bert"}')
  (tmp_path / 'model.safetensors').write_bytes(b'')
  with pytest.raises(ValueError, match="model_type 'bert' is not an image ViT"):
    vit.read_vit(str(tmp_path))
  with pytest.raises(FileNotFoundError, match='neither'):
    vit.read_vit(str(tmp_path / 'nothing'))
  np.savez(tmp_path / 'other.npz', **{'conv/kernel': np.zeros(3)})
  with pytest.raises(ValueError, match="has no array 'embedding/kernel'"):
    vit.read_vit(str(tmp_path / 'other.npz'))


def test_vit_model_without_classifier(tmp_path):
  transformers.ViTModel(transformers.ViTConfig(**VIT)).save_pretrained(tmp_path)  # Has a pooler.
  image_vit = vit.read_vit(str(tmp_path))
  assert 'head' not in image_vit.params and image_vit.sizes() == SIZES
  with pytest.raises(ValueError, match='no usable classifier head'):
    vit.video_params(image_vit, _vivit_config(), video_shape=(2, 16, 16), load_head=True)
