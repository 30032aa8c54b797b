"""Bad inputs get clear errors: every registered model refuses (models.inputs.check_video) a
missing axis, grayscale or channels-first video, empty axes and uint8 pixels, and clips shorter
or smaller than it needs, naming itself, the shape, the expected (B, T, H, W, 3) and the
normalisation; valid clips still pass. predict.check_frames and inputs.check_finite do the host
side (grayscale and float pixels converted; NaN, scaled or normalised pixels, frames smaller than
the crop refused). Shapes only: jax.eval_shape of tiny models' init.
"""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from tests.helpers import tiny_config
from vivit_jax import models, predict
from vivit_jax.models import inputs

NUM_CLASSES = 3
CLIP = (1, 4, 16, 16, 3)  # (B, T, H, W, C)
TRANSFORMER = dict(hidden_size=16, num_layers=1, num_heads=2, mlp_dim=32, dropout_rate=0.0,
                   attention_dropout_rate=0.0, stochastic_depth=0.0, attention_impl='xla',
                   dtype='float32', param_dtype='float32')
VIDEOMAE = dict(patch_size=4, tubelet_size=2, hidden_size=16, num_layers=1, num_heads=2,
                mlp_dim=32)
CNN = dict(depth=10, base_width=4, dropout_rate=0.0)
FIELDS = {
    'vivit': dict(variant='spatio_temporal', classifier='token', patch_size=(2, 4, 4),
                  **TRANSFORMER),
    'timesformer': dict(num_frames=4, image_size=16, patch_size=4, **TRANSFORMER),
    'videomae': VIDEOMAE,
    'videomae_pretrain': dict(decoder_hidden_size=8, decoder_num_layers=1, decoder_num_heads=2,
                              decoder_mlp_dim=16, mask_ratio=0.75, **VIDEOMAE),
    'resnet2d': CNN,
    'resnet3d': dict(temporal_pool=2, **CNN),
    'c3d': dict(base_width=2, fc_width=8),
    'r2plus1d': dict(base_width=4),
    'cnn_lstm': dict(lstm_width=4, **CNN),
    'conv_gru': dict(hidden_widths=(2, 2, 2, 2), **CNN),
    'slowfast': dict(depth=10, base_width=8, alpha=4),
    'single_frame': CNN,
    'late_fusion': dict(hidden_width=8, **CNN),
    'early_fusion': CNN,
    'two_stream': CNN,
    'x3d': dict(base_width=4, depth_factor=0.5, head_width=8),
    'mvit': dict(embed_dim=8, depth=2, stage_starts=(1,), kv_stride=(1, 2, 2), dtype='float32'),
}
CLIPS = {'c3d': (1, 16, 16, 16, 3)}  # Models whose smallest clip is larger than CLIP.


def test_every_registered_model_is_covered():
  assert set(FIELDS) == set(models.MODELS)


def _model(name: str):
  fields = FIELDS[name] if name == 'videomae_pretrain' else dict(FIELDS[name],
                                                                  num_classes=NUM_CLASSES)
  return models.build(ml_collections.ConfigDict(dict(name=name, **fields)))


def _init(name: str, shape, dtype=jnp.float32, model=None, **extra):
  """Abstract (output, variables) of model `name` (or `model`) initialised on a video of `shape`
  and `dtype`; the extra inputs (two_stream's flow) fit the model's valid clip unless given."""
  model = model or _model(name)
  extra = {**{k: jax.ShapeDtypeStruct(s, jnp.float32)
              for k, s in models.extra_input_shapes(model, CLIPS.get(name, CLIP)).items()},
           **extra}
  rngs = {'params': jax.random.key(0), 'masking': jax.random.key(1)}
  return jax.eval_shape(lambda video, kw: model.init_with_output(rngs, video, train=False, **kw),
                        jax.ShapeDtypeStruct(shape, dtype), extra)


@pytest.mark.parametrize('name', sorted(FIELDS))
def test_valid_clip_passes(name):
  out, _ = _init(name, CLIPS.get(name, CLIP))
  if name == 'videomae_pretrain':
    assert out['loss'].shape == ()
  else:
    assert out.shape == (1, NUM_CLASSES)


def _bad(shape, axis, size):
  return shape[:axis] + (size,) + shape[axis + 1:]


# (case, shape from the valid clip shape, dtype, key word of the message).
CASES = [
    ('no batch axis', lambda s: s[1:], jnp.float32, 'axes instead of 5'),
    ('grayscale', lambda s: _bad(s, 4, 1), jnp.float32, 'grayscale'),
    ('channels first', lambda s: (s[0], 3) + s[1:4], jnp.float32, 'channels first'),
    ('no frames', lambda s: _bad(s, 1, 0), jnp.float32, 'length 0'),
    ('no width', lambda s: _bad(s, 3, 0), jnp.float32, 'length 0'),
    ('uint8', lambda s: s, jnp.uint8, r'uint8 is not a float dtype.*/ 255 - mean\) / std'),
]


@pytest.mark.parametrize('name, shape, dtype, match', [
    pytest.param(name, *case[1:], id=f'{name}-{case[0]}') for name in sorted(FIELDS)
    for case in CASES if (name, case[0]) != ('resnet2d', 'no batch axis')])  # It takes images.
def test_bad_video_is_refused(name, shape, dtype, match):
  bad = shape(CLIPS.get(name, CLIP))
  with pytest.raises(ValueError, match=match) as refused:
    _init(name, bad, dtype)
  message = str(refused.value)
  assert f'takes videos (B, T, H, W, C), got shape {bad}' in message
  assert type(_model(name)).__name__ in message
  assert 'Expected (B, T, H, W, 3) float32' in message and 'config.dataset.mean' in message


@pytest.mark.parametrize('name, shape, match', [
    ('vivit', (1, 3, 16, 16, 3), r'cannot be cut into tubelets of config.model.patch_size'),
    ('videomae', (1, 4, 18, 16, 3), r'cannot be cut into cubes'),
    ('timesformer', (1, 2, 16, 16, 3), r'num_frames=4 and image_size=16 fix \(T, H, W\)'),
    ('resnet3d', (1, 1, 16, 16, 3), r'temporal_pool=2 exceeds the clip length 1'),
    ('c3d', (1, 8, 16, 16, 3), r'at least 16 x 16 x 16'),
    ('slowfast', (1, 6, 16, 16, 3), r'divisible by config.model.alpha=4'),
    ('two_stream', (1, 1, 16, 16, 3), r'at least 2 frames'),
])
def test_clip_the_model_cannot_take_is_refused(name, shape, match):
  with pytest.raises(ValueError, match=match) as refused:
    _init(name, shape)
  assert f'got shape {shape}' in str(refused.value)


def test_flow_is_checked_with_two_channels():
  with pytest.raises(ValueError, match=r'TwoStream takes flow .* int32 is not a float dtype'):
    _init('two_stream', CLIP, flow=jax.ShapeDtypeStruct((1, 3, 16, 16, 2), jnp.int32))
  with pytest.raises(ValueError, match=r'3 channels instead of 2'):
    _init('two_stream', CLIP, flow=jax.ShapeDtypeStruct((1, 3, 16, 16, 3), jnp.float32))


def test_vivit_refuses_a_clip_size_its_position_embeddings_do_not_fit():
  model = _model('vivit')
  _, variables = _init('vivit', CLIP, model=model)
  with pytest.raises(ValueError, match=r"65 tokens do not fit the position embeddings "
                                       r"'pos_embedding' \(1, 33, 16\).*config.dataset.num_frames"):
    jax.eval_shape(lambda v, x: model.apply(v, x, train=False), variables,
                   jax.ShapeDtypeStruct((1, 8, 16, 16, 3), jnp.float32))


def test_check_finite_refuses_nan_on_the_host():
  batch = {'video': np.zeros(CLIP, np.float32), 'label': np.zeros(1, np.int32)}
  assert inputs.check_finite(batch, 'batch') is batch
  batch['video'][0, 1, 2, 3] = [np.nan, np.inf, 0]
  with pytest.raises(ValueError, match=r"batch: 'video' has 2 NaN or infinite values of 3072"):
    inputs.check_finite(batch, 'batch')


@pytest.fixture
def dataset():
  return tiny_config().dataset  # 4 frames at stride 2, 16 x 16 crops, mean = std = 0.5.


def _frames(shape=(6, 20, 24, 3), seed=0):
  return np.random.default_rng(seed).integers(0, 256, shape).astype(np.uint8)


@pytest.mark.parametrize('frames, match', [
    (_frames((6, 20, 24)), r'3 axes instead of 4; grayscale \(T, H, W\): frames\[..., None\]'),
    (_frames((0, 20, 24, 3)), r'no frames'),
    (_frames((6, 20, 0, 3)), r'an axis of length 0'),
    (_frames((6, 20, 24, 2)), r'2 channels; give RGB \(3\) or grayscale \(1\)'),
    (_frames((6, 3, 20, 24)), r'channels first'),
    (_frames((6, 12, 24, 3)), r'12x24 frames are smaller than the 16x16 crop .*eval_short_side'),
    (np.full((6, 20, 24, 3), np.nan, np.float32), r'8640 NaN or infinite values'),
    (_frames().astype(np.float32) / 127.5 - 1, r'not 0-255 pixels.*not normalised ones'),
    (_frames().astype(np.float32) / 255, r'pixels scaled to \[0, 1\]\? pass frames \* 255'),
    (_frames() > 127, r'pixels must be integers or floats'),
], ids=['grayscale without channel axis', 'no frames', 'no width', '2 channels',
        'channels first', 'smaller than the crop', 'NaN', 'normalised', 'scaled', 'bool'])
def test_predict_refuses_bad_frames(dataset, frames, match):
  with pytest.raises(ValueError, match=match) as refused:
    predict.views_from_frames(frames, dataset)
  assert 'Frames must be (T, H, W, C) pixels 0-255' in str(refused.value)


def test_predict_refuses_an_eval_short_side_below_the_crop(dataset):
  dataset.eval_short_side = 8
  with pytest.raises(ValueError, match=r'resized to a short side of config.dataset.'
                                       r'eval_short_side=8 are smaller than the 16x16 crop'):
    predict.check_frames(_frames(), dataset)


def test_predict_converts_grayscale_and_number_pixels(dataset):
  """Grayscale is repeated to RGB, float and int pixels 0-255 are rounded to uint8: the same
  views as the uint8 RGB frames; small frames pass once eval_short_side resizes them."""
  rgb = _frames()
  gray = rgb[..., :1]
  assert predict.check_frames(rgb, dataset) is rgb
  np.testing.assert_array_equal(predict.check_frames(gray, dataset), np.repeat(gray, 3, -1))
  np.testing.assert_array_equal(predict.check_frames(rgb + 0.3 * (rgb < 255), dataset), rgb)
  np.testing.assert_array_equal(predict.check_frames(rgb.astype(np.int64), dataset), rgb)
  views = predict.views_from_frames(gray, dataset)['video']
  assert views.shape == (1, 4, 16, 16, 3) and np.all(views[..., 0] == views[..., 2])
  dataset.eval_short_side = 16
  assert predict.views_from_frames(_frames((6, 12, 24, 3)), dataset)['video'].shape == (
      1, 4, 16, 16, 3)
