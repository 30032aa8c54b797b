"""config.init_from end to end: image ViT, Hugging Face video model, Orbax checkpoints."""
import os
import subprocess
import sys

import flax.linen as nn
import jax
import ml_collections
import numpy as np
import pytest
import torch
import transformers

from tests.helpers import REPO, tiny_config
from tests.weights.test_vit import save_hf_vit
from vivit_jax import models
from vivit_jax.models import scan
from vivit_jax.saved import checkpoints
from vivit_jax.train import loop
from vivit_jax.weights import hf, init_from, vit


def _equal(a, b) -> bool:
  return (jax.tree.structure(a) == jax.tree.structure(b)
          and all(jax.tree.leaves(jax.tree.map(np.array_equal, a, b))))


def _init_from(path: str, load_head: bool = False) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(path=str(path), kernel_init='average',
                                        load_head=load_head))


def _load_params(init, model_config, fresh_params, video_shape):
  """The params of `init_from.load_init_variables` for a model without batch statistics."""
  return init_from.load_init_variables(init, model_config, {'params': fresh_params},
                                       video_shape)['params']


@pytest.fixture(scope='module')
def initialised(synthetic_data_dir, tmp_path_factory):
  """(config with init_from = a tiny HF ViT, its workdir, the state's params after setup).

  The workdir then gets a checkpoint at step 1 whose params are those params + 1.
  """
  config = tiny_config()
  config.dataset.data_dir = synthetic_data_dir
  vit_dir = tmp_path_factory.mktemp('vit')
  save_hf_vit(vit_dir)
  config.init_from = _init_from(vit_dir)
  workdir = str(tmp_path_factory.mktemp('workdir'))
  exp = loop.setup(config, workdir)
  params = jax.device_get(exp.state.params)
  shardings_match = all(jax.tree.leaves(jax.tree.map(
      lambda x, s: x.sharding == s, exp.state.params, exp.state_shardings.params)))
  assert shardings_match
  exp.ckpt.save(exp.state.replace(step=exp.state.step + 1,
                                  params=jax.tree.map(lambda x: x + 1, exp.state.params)),
                1, force=True)
  exp.ckpt.close()
  return config, workdir, params


def test_setup_initialises_from_an_image_vit(initialised):
  config, _, params = initialised
  expected = vit.init_from_vit(config.model, config.init_from.path, video_shape=(4, 16, 16),
                               kernel_init='average')
  # The head stays fresh (load_head=False: 10 classes, the ViT has 5); ViViT's starts at zero.
  assert not expected['head']['kernel'].any() and not expected['head']['bias'].any()
  assert _equal(params, expected)


def test_load_logs_what_was_loaded(initialised, caplog):
  config, _, _ = initialised
  fresh = jax.tree.map(np.zeros_like, initialised[2])
  with caplog.at_level('INFO', 'vivit_jax'):
    _load_params(config.init_from, config.model, fresh, (4, 16, 16))
  assert (f'Initialised 38 of 40 parameter arrays from {config.init_from.path} (vit); 2 left '
          f'fresh (e.g. head/bias, head/kernel)') in caplog.text


def test_checkpoint_in_the_workdir_wins(initialised):
  config, workdir, params = initialised
  exp = loop.setup(config, workdir)
  exp.ckpt.close()
  assert int(exp.state.step) == 1
  assert _equal(jax.device_get(exp.state.params), jax.tree.map(lambda x: x + 1, params))


def test_workdir_as_init_from(initialised):
  config, workdir, params = initialised
  zeros = jax.tree.map(np.zeros_like, params)
  loaded = _load_params(_init_from(workdir, load_head=True), config.model, zeros, (4, 16, 16))
  assert _equal(loaded, jax.tree.map(lambda x: x + 1, params))


def test_scanned_model_initialises_from_an_image_vit(initialised, tmp_path):
  """A ViT (unrolled conversion) and an unscanned workdir both load into a scan_layers model: its
  params are the unscanned ones stacked, and it gives the same logits."""
  config, workdir, params = initialised
  scanned = config.copy_and_resolve_references()
  scanned.model.update(scan_layers=True, remat='dots')
  exp = loop.setup(scanned, str(tmp_path / 'scanned'))
  exp.ckpt.close()
  got = jax.device_get(exp.state.params)
  assert got['encoder']['blocks']['attn']['query']['kernel'].shape[0] == config.model.num_layers
  assert _equal(got, scan.stack(params))
  rng = np.random.default_rng(0)
  video = rng.normal(size=(2, 4, 16, 16, 3)).astype(np.float32)
  head = jax.tree.map(lambda x: rng.normal(size=x.shape).astype(np.float32), params['head'])
  logits = [models.build(c.model).apply({'params': {**p, 'head': head}}, video, train=False)
            for c, p in ((scanned, got), (config, params))]
  assert np.abs(logits[1]).max() > 0.1
  np.testing.assert_allclose(logits[0], logits[1], atol=1e-5)
  zeros = jax.tree.map(np.zeros_like, got)
  loaded = _load_params(_init_from(workdir, load_head=True), scanned.model, zeros, (4, 16, 16))
  assert _equal(loaded, scan.stack(jax.tree.map(lambda x: x + 1, params)))


def _save_hf_timesformer(directory):
  """A random TimesformerForVideoClassification (every tensor normal(0, 0.2)) in `directory`."""
  torch.manual_seed(0)
  model = transformers.TimesformerForVideoClassification(transformers.TimesformerConfig(
      image_size=16, patch_size=4, num_frames=2, hidden_size=32, num_hidden_layers=1,
      num_attention_heads=2, intermediate_size=64, num_labels=3))
  with torch.no_grad():
    for p in model.parameters():
      p.normal_(std=0.2)
  model.save_pretrained(directory)


def test_convert_checkpoint_round_trips(tmp_path):
  _save_hf_timesformer(tmp_path / 'hf')
  result = subprocess.run(
      [sys.executable, os.path.join(REPO, 'tools', 'convert_checkpoint.py'),
       f'--src={tmp_path / "hf"}', f'--out={tmp_path / "orbax"}'],
      capture_output=True, text=True, cwd=REPO, check=False)
  assert result.returncode == 0, result.stderr[-2000:]
  assert '--config.model.name=timesformer' in result.stdout
  assert '--config.model.num_frames=2' in result.stdout
  model_config, variables = hf.load_pretrained(str(tmp_path / 'hf'))
  fresh = jax.tree.map(np.zeros_like, variables['params'])
  for source in ('orbax', 'hf'):  # The converted checkpoint and the HF directory itself.
    path = tmp_path / source
    assert init_from.source_kind(str(path)) == source
    params = _load_params(_init_from(path, load_head=True), model_config, fresh, (2, 16, 16))
    assert _equal(params, variables['params'])
    params = _load_params(_init_from(path), model_config, fresh, (2, 16, 16))
    assert not params['head']['kernel'].any()  # load_head=False keeps the fresh head.
  model_config.hidden_size = 48
  wider = dict(fresh, cls={'token': np.zeros((1, 1, 48), np.float32)})
  with pytest.raises(ValueError, match='Fix: set --config.model.hidden_size=32'):
    _load_params(_init_from(tmp_path / 'orbax'), model_config, wider, (2, 16, 16))


def test_merge_rejects_leaves_the_model_lacks():
  fresh = {'encoder': {'w': np.zeros((2, 3))}, 'head': {'kernel': np.zeros((3, 10))}}
  with pytest.raises(ValueError, match=r"1 parameters not in the model \(e.g. \['extra/w'\]\)"):
    init_from.merge_params(fresh, {'extra': {'w': np.ones(2)}}, load_head=False, source='src')
  with pytest.raises(ValueError, match=r'encoder/w: \(2, 4\), model \(2, 3\)'):
    init_from.merge_params(fresh, {'encoder': {'w': np.ones((2, 4))}}, load_head=False,
                           source='src')
  with pytest.raises(ValueError, match='or config.init_from.load_head=False'):
    init_from.merge_params(fresh, {'head': {'kernel': np.ones((3, 5))}}, load_head=True,
                           source='src')
  merged, left_fresh = init_from.merge_params(fresh, {'head': {'kernel': np.ones((3, 5))}},
                                              load_head=False, source='src')
  assert _equal(merged, fresh) and left_fresh == ['encoder/w', 'head/kernel']


def test_unusable_paths_raise(tmp_path):
  with pytest.raises(FileNotFoundError, match='does not exist'):
    init_from.source_kind(str(tmp_path / 'missing'))
  with pytest.raises(ValueError, match='is neither'):
    init_from.source_kind(str(tmp_path))
  (tmp_path / 'config.json').write_text('{"model_type": "bert"}')
  with pytest.raises(ValueError, match="model_type 'bert' cannot initialise a model"):
    init_from.source_kind(str(tmp_path))


@pytest.mark.parametrize('use_mean_pooling', [True, False])
def test_videomae_pretraining_checkpoint_initialises_the_classifier(tmp_path, use_mean_pooling):
  """The encoder comes from pre-training; decoder, mask token and projection are dropped; the
  head (and fc_norm with mean pooling) stay fresh."""
  tiny = dict(patch_size=4, tubelet_size=2, hidden_size=16, num_layers=2, num_heads=2, mlp_dim=32)
  pretrain_config = dict(name='videomae_pretrain', decoder_hidden_size=8, decoder_num_layers=1,
                         decoder_num_heads=2, decoder_mlp_dim=16, mask_ratio=0.5,
                         **tiny)
  classifier = ml_collections.ConfigDict(dict(name='videomae', num_classes=3,
                                              use_mean_pooling=use_mean_pooling, **tiny))
  video = jax.numpy.zeros((1, 2, 8, 8, 3))

  def random_params(config, seed):
    model = models.build(ml_collections.ConfigDict(config))
    shapes = nn.unbox(jax.eval_shape(lambda: model.init(
        {'params': jax.random.key(0), 'masking': jax.random.key(1)}, video, train=False)))
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda s: rng.normal(size=s.shape).astype(np.float32), shapes['params'])

  pretrained = random_params(pretrain_config, 0)
  checkpoints.save_variables(str(tmp_path), {"params": pretrained}, pretrain_config)
  fresh = random_params(classifier.to_dict(), 1)
  params = _load_params(_init_from(tmp_path), classifier, fresh, (2, 8, 8))
  assert _equal(params['embedding'], pretrained['embedding'])
  for i in range(2):
    assert _equal(params['encoder'][f'block_{i}'], pretrained['encoder'][f'block_{i}'])
  assert _equal(params['head'], fresh['head'])
  if use_mean_pooling:  # The pre-training encoder's final norm gives way to a fresh fc_norm.
    assert 'norm' not in params['encoder'] and _equal(params['fc_norm'], fresh['fc_norm'])
  else:
    assert _equal(params['encoder']['norm'], pretrained['encoder']['norm'])
  classifier.name = 'vivit'
  with pytest.raises(ValueError, match="holds a 'videomae_pretrain' model but config.model.name="
                                       "'vivit': set --config.model.name to one of "
                                       "videomae_pretrain, videomae"):
    _load_params(_init_from(tmp_path), classifier, fresh, (2, 8, 8))
