"""The Hugging Face peers (speed.hf_peers): built from our configs, they read back as our configs
with our parameter counts; models transformers lacks have none."""
import pytest

from tests.tools.benchmarks.speed.small_configs import small
from tools.benchmarks.speed import hf_peers, ours
from configs import speed_benchmark
from vivit_jax.models import flops
from vivit_jax.weights import hf


@pytest.mark.parametrize('name', ['vivit1', 'timesformer', 'videomae_finetune',
                                  'videomae_pretrain'])
def test_hf_peer_reads_back_as_our_config(name, tmp_path):
  """The HF model built from our config, saved and read by weights.hf, gives our config back
  (and the same parameter count)."""
  config = small(name)
  class_name, fields = hf_peers.hf_config(config.model, ours.clip_shape(config))
  model, _ = hf_peers.build_model(class_name, fields)
  model.save_pretrained(tmp_path)
  read, _ = hf.load_pretrained(str(tmp_path))
  for field in ('name', 'hidden_size', 'num_layers', 'num_heads', 'mlp_dim', 'hidden_act',
                'layer_norm_eps', 'patch_size', 'num_classes', 'decoder_hidden_size',
                'decoder_num_layers', 'tubelet_size', 'use_mean_pooling', 'encoder_norm',
                'stochastic_depth', 'variant', 'classifier'):
    if field == 'stochastic_depth' and name == 'videomae_finetune':
      continue  # HF VideoMAE has no stochastic depth (the benchmark notes it).
    if field in config.model and field in read:
      ours_value, read_value = config.model[field], read[field]
      if field == 'patch_size':
        ours_value, read_value = tuple(ours_value) if not isinstance(ours_value, int) else (
            ours_value), read_value
      assert ours_value == read_value, field
  assert sum(p.numel() for p in model.parameters()) == flops.param_count(
      config.model, ours.clip_shape(config))


def test_no_hf_peer_for_models_transformers_lacks():
  for name in ('vivit2', 'vivit3', 'vivit4', 'i3d', 'slowfast', 'c3d'):
    config = speed_benchmark.benchmark_config(name, 'tiny')
    assert hf_peers.hf_config(config.model, ours.clip_shape(config)) is None
