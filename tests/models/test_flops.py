"""Analytic FLOP counts against XLA's cost analysis; parameter counts against ViT-B/16."""
import ml_collections
import pytest

from tests.helpers import load_config
from vivit_jax.models import flops

CLIP = (8, 32, 32)  # (T, H, W)


def _vivit(**fields) -> ml_collections.ConfigDict:
  """A 2-layer, 64-wide ViViT with 2x8x8 tubelets; ReLU keeps XLA's element-wise count small."""
  model = load_config().model
  model.update({'hidden_size': 64, 'num_heads': 4, 'mlp_dim': 256, 'num_layers': 2,
                'patch_size': (2, 8, 8), 'hidden_act': 'relu', **fields})
  return model


def _timesformer() -> ml_collections.ConfigDict:
  model = _vivit()
  return ml_collections.ConfigDict(dict(
      {k: model[k] for k in ('num_classes', 'hidden_size', 'num_heads', 'mlp_dim', 'num_layers',
                             'dropout_rate', 'attention_dropout_rate', 'stochastic_depth',
                             'attention_impl', 'dtype', 'param_dtype', 'hidden_act')},
      name='timesformer', num_frames=CLIP[0], image_size=CLIP[1], patch_size=8))


def _videomae() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      name='videomae', num_classes=10, patch_size=8, tubelet_size=2, hidden_size=64, num_layers=2,
      num_heads=4, mlp_dim=256, hidden_act='relu'))


def _videomae_pretrain() -> ml_collections.ConfigDict:
  """4 x 4 x 4 cubes, 12 of each frame's 16 tubes masked; decoder 32 wide, 1 layer."""
  fields = {k: v for k, v in _videomae().items() if k != 'num_classes'}
  return ml_collections.ConfigDict(dict(fields, name='videomae_pretrain', mask_ratio=0.75,
                                        decoder_hidden_size=32, decoder_num_layers=1,
                                        decoder_num_heads=2, decoder_mlp_dim=128))


MODELS = {
    'model1_token': lambda: _vivit(variant='spatio_temporal', classifier='token'),
    'model1_gap_frames': lambda: _vivit(variant='spatio_temporal', classifier='gap',
                                        tokenizer='frame', patch_size=(8, 8)),
    'model2_token': lambda: _vivit(variant='factorised_encoder', classifier='token',
                                   num_temporal_layers=2),
    'model2_gap': lambda: _vivit(variant='factorised_encoder', classifier='gap',
                                 num_temporal_layers=1),
    'model3': lambda: _vivit(variant='factorised_self_attention', classifier='gap'),
    'model4': lambda: _vivit(variant='factorised_dot_product', classifier='gap'),
    'model4_frames': lambda: _vivit(variant='factorised_dot_product', classifier='gap',
                                    tokenizer='frame', patch_size=(1, 8, 8)),
    'timesformer': _timesformer,
    'videomae': _videomae,
    'videomae_pretrain': _videomae_pretrain,
}


@pytest.mark.parametrize('name', MODELS)
def test_analytic_count_matches_xla(name):
  model = MODELS[name]()
  analytic, xla = flops.analytic_flops(model, CLIP), flops.xla_flops(model, CLIP)
  # XLA also counts element-wise work (norms, softmax, ReLU, adds): a little more, never less;
  # pre-training adds its targets' per-cube normalisation and the loss (5.2% here).
  slack = 1.08 if name == 'videomae_pretrain' else 1.05
  assert analytic <= xla <= slack * analytic, (analytic, xla)


def test_videomae_pretraining_counts_the_attention_of_encoder_and_decoder():
  """The analytic count adds both encoders' attention products to the dense layers (which
  layer_flops counts): the encoder over the 64 - 48 = 16 visible cubes, the decoder over all 64
  (the 16 visible and 48 mask tokens)."""
  model = _videomae_pretrain()
  visible, cubes = 16, 64
  attention = 2 * 2 * (visible ** 2 * 64 * 2 + cubes ** 2 * 32)  # Scores and sums, 2 + 1 layers.
  projections = 4 * 2 * (visible * 64 ** 2 * 2 + cubes * 32 ** 2)  # q, k, v, out (nn.Einsum).
  assert flops.analytic_flops(model, CLIP) == (flops.layer_flops(model, CLIP) + attention
                                              + projections)


def test_vit_b16_image_matches_published_counts():
  """ViViT Model 1 on one 224x224 frame is ViT-B/16: 86,567,656 parameters with a 1000-class
  head (timm) and 17.6 G multiply-adds (DeiT, Table 1)."""
  model = load_config().model
  model.update(tokenizer='frame', patch_size=(16, 16), num_classes=1000, hidden_size=768,
               num_layers=12, num_heads=12, mlp_dim=3072)
  assert flops.param_count(model, (1, 224, 224)) == 86_567_656
  assert flops.analytic_flops(model, (1, 224, 224)) / 2 == pytest.approx(17.6e9, rel=5e-3)


def test_videomae_b_matches_published_counts():
  """VideoMAE ViT-B/16 on 16x224x224: 87M parameters and 180 G multiply-adds per view
  (VideoMAE, Table 6)."""
  model = ml_collections.ConfigDict(dict(name='videomae', num_classes=400, patch_size=16,
                                         tubelet_size=2, hidden_size=768, num_layers=12,
                                         num_heads=12, mlp_dim=3072))
  assert flops.param_count(model, (16, 224, 224)) / 1e6 == pytest.approx(87, abs=0.5)
  assert flops.analytic_flops(model, (16, 224, 224)) / 2 == pytest.approx(180e9, rel=0.01)


CNNS = {
    'c3d': dict(name='c3d', num_classes=10, base_width=4, fc_width=32),
    'i3d': dict(name='resnet3d', num_classes=10, depth=50, base_width=4,
                temporal_kernels=((3,), (3, 1), (3, 1), (1, 3)), stem_temporal_kernel=5,
                temporal_pool=2, nonlocal_blocks=((), (1,), (), ())),
    'r2plus1d': dict(name='r2plus1d', num_classes=10, base_width=4),
}


@pytest.mark.parametrize('name', CNNS)
def test_cnn_layer_count_is_near_xla(name):
  """Convolutions and dense layers are nearly all of a CNN's work. XLA adds BatchNorm, ReLU,
  pooling and attention, but skips the taps that fall on zero padding, which the layer count
  (like the papers') includes: C3D's 3x3x3 convs on 2-frame maps lose most to that."""
  model, shape = ml_collections.ConfigDict(CNNS[name]), (16, 112, 112)
  analytic, xla = flops.analytic_flops(model, shape), flops.xla_flops(model, shape)
  assert analytic == flops.layer_flops(model, shape)
  assert 0.85 * analytic <= xla <= 1.1 * analytic, (analytic, xla)


@pytest.mark.parametrize('depth, giga_macs', [(18, 1.81), (50, 4.09)])
def test_resnet_layer_count_matches_torchvision(depth, giga_macs):
  """torchvision's ResNet-18/50 on 224x224 images: 1.81 / 4.09 G multiply-adds ('GFLOPS' in its
  model table)."""
  model = ml_collections.ConfigDict(dict(name='resnet2d', num_classes=1000, depth=depth))
  assert flops.layer_flops(model, (1, 224, 224)) / 2 == pytest.approx(giga_macs * 1e9, rel=5e-3)


@pytest.mark.parametrize('options', [dict(scan_layers=True), dict(remat='full'),
                                     dict(scan_layers=True, remat='dots')])
def test_xla_count_sees_every_layer_of_scanned_and_rematted_encoders(options):
  """XLA counts a scan's body once; counting_config unrolls it (and drops remat recomputation),
  so the speed options do not change the count."""
  assert flops.xla_flops(_vivit(**options), CLIP) == flops.xla_flops(_vivit(), CLIP)
  assert flops.counting_config(_vivit(**options)).scan_layers is False


def test_cost_flops_reads_every_shape_of_analysis():
  class Stage:
    def __init__(self, analysis):
      self.analysis = analysis

    def cost_analysis(self):
      if isinstance(self.analysis, Exception):
        raise self.analysis
      return self.analysis

  assert flops.cost_flops(Stage({'flops': 12.0})) == 12.0
  assert flops.cost_flops(Stage([{'flops': 3}])) == 3.0  # Older JAX: one dict per program.
  for missing in (None, {}, [], {'flops': -1.0}, NotImplementedError('no cost analysis')):
    assert flops.cost_flops(Stage(missing)) is None
