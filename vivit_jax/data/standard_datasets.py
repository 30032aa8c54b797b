"""Layouts of video files on disk -> `video_folder.Source` (class names, rows per split).

`source(layout, root, split_id=None)` for `layout` in `LAYOUTS` (ROOT = `root`; EXPECTED holds
these layouts in one line each, for the errors):

  folder       ROOT/<split>/<class>/<video>: every split dir holding class dirs is a split;
               classes are the sorted class dir names of all splits
  csv          ROOT/<split>.csv (header path,label[,start,end]) or ROOT/<split>.json (a list of
               {"path", "label"[, "start", "end"]}); paths relative to ROOT, start/end seconds
  ucf101       ROOT/UCF-101/<class>/v_*.avi + ROOT/ucfTrainTestlist/{classInd.txt,
               trainlist0N.txt, testlist0N.txt}, N = split_id 1-3: splits train, test
  hmdb51       ROOT/<class>/*.avi + ROOT/testTrainMulti_7030_splits/<class>_test_splitN.txt
               (N = split_id 1-3; per video 1 = train, 2 = test, 0 = unused): splits train, test
  kinetics400, kinetics600, kinetics700
               ROOT/annotations/{train,val,test}.csv (val.csv may be validate.csv; columns label,
               youtube_id,time_start,time_end,...) + clips ROOT/{train,val,test}/ named
               <youtube_id>_<time_start:06d>_<time_end:06d>.<ext>, flat or in class dirs (as
               cvdfoundation/kinetics-dataset and the ActivityNet crawler write them): splits
               train, validation, test (test only where its CSV and clip dir exist)
  ssv2         ROOT/labels/{labels,train,validation}.json (the 20BN download) + videos
               ROOT/20bn-something-something-v2/<id>.webm: splits train, validation

A layout whose files or directories are missing raises one `LayoutError` listing all of them and
where it looked. A video listed by an annotation but absent on disk is not a layout error (many
Kinetics clips are gone from YouTube): the build skips it and lists it in its report, as it does
links to nothing and directories named like videos ('x.mp4') where videos are listed or looked up.
"""
import csv
import functools
import json
import os

from vivit_jax.data import video_io
from vivit_jax.data.video_folder import Row, Source

EXPECTED = {
    'folder': 'ROOT/<split>/<class>/<video>',
    'csv': 'ROOT/<split>.csv (header path,label[,start,end]) or ROOT/<split>.json',
    'ucf101': 'ROOT/UCF-101/<class>/v_*.avi + ROOT/ucfTrainTestlist/{classInd.txt,'
              'trainlist0N.txt,testlist0N.txt}',
    'hmdb51': 'ROOT/<class>/*.avi + ROOT/testTrainMulti_7030_splits/<class>_test_splitN.txt',
    'kinetics': 'ROOT/annotations/{train,val,test}.csv + clips ROOT/{train,val,test}/'
                '<youtube_id>_<start:06d>_<end:06d>.mp4',
    'ssv2': 'ROOT/labels/{labels,train,validation}.json + '
            'ROOT/20bn-something-something-v2/<id>.webm',
}
_KINETICS_SPLITS = {'train': ('train',), 'validation': ('val', 'validate'), 'test': ('test',)}


class LayoutError(ValueError):
  """A source directory that lacks files or directories its layout needs."""


def _check(root: str, layout: str, missing: list[str]):
  """Raises a LayoutError listing `missing` (paths under `root`) if there are any."""
  if missing:
    expected = EXPECTED['kinetics' if layout.startswith('kinetics') else layout]
    raise LayoutError(
        f"'{root}' does not hold the {layout} layout ({expected}); missing: "
        f"{', '.join(missing)}. Point --src at the directory that holds them, or pick the right "
        f"--layout.")


def _missing(root: str, paths) -> list[str]:
  return [path for path in paths if not os.path.exists(os.path.join(root, path))]


def _subdirs(path: str) -> list[str]:
  return sorted(name for name in os.listdir(path)
                if not name.startswith('.') and os.path.isdir(os.path.join(path, name)))


def _files(path: str) -> list[str]:
  return sorted(name for name in os.listdir(path)
                if not name.startswith('.') and os.path.isfile(os.path.join(path, name)))


def _videos(path: str) -> list[str]:
  """The entries of directory `path` that stand for videos: files, links (to nothing too) and
  directories named like a video file ('x.mp4'); the build reports those it cannot read."""
  return sorted(name for name in os.listdir(path) if not name.startswith('.') and (
      not os.path.isdir(os.path.join(path, name)) or _is_video_name(name)))


def _is_video_name(name: str) -> bool:
  return os.path.splitext(name)[1].lower() in video_io.VIDEO_EXTENSIONS


def folder(root: str) -> Source:
  """ROOT/<split>/<class>/<video>; video ids '<class>/<file name>'."""
  splits = {split: _subdirs(os.path.join(root, split)) for split in _subdirs(root)}
  splits = {split: classes for split, classes in splits.items() if classes}
  _check(root, 'folder', [] if splits else ['<split>/<class>/ directories'])
  rows = {split: [Row(os.path.join(root, split, name, file), name, f'{name}/{file}')
                  for name in classes for file in _videos(os.path.join(root, split, name))]
          for split, classes in splits.items()}
  return Source(tuple(sorted({name for classes in splits.values() for name in classes})), rows)


def _annotation_rows(path: str) -> list[dict]:
  """The rows of a .csv (with a header) or .json (a list of objects) annotation file."""
  with open(path, newline='') as f:
    rows = list(csv.DictReader(f)) if path.endswith('.csv') else json.load(f)
  for i, row in enumerate(rows):
    if not isinstance(row, dict) or not {'path', 'label'} <= set(row):
      raise ValueError(f"Row {i} of annotation file '{path}' lacks 'path' or 'label' (each row "
                       f"needs path, label[, start, end]); fix the file.")
  return rows


def annotations(root: str) -> Source:
  """ROOT/<split>.csv or .json rows (path, label[, start, end]); video ids: the path, with
  ':start-end' when trimmed."""
  files = {os.path.splitext(name)[0]: name for name in _files(root)
           if name.endswith(('.csv', '.json'))}
  _check(root, 'csv', [] if files else ['<split>.csv or <split>.json'])
  splits, names = {}, set()
  for split, name in sorted(files.items()):
    splits[split] = []
    for row in _annotation_rows(os.path.join(root, name)):
      start, end = (float(row[key]) if row.get(key) not in (None, '') else None
                    for key in ('start', 'end'))
      trim = '' if start is None and end is None else f':{start or 0:g}-{end or "end"}'
      label = str(row['label'])
      names.add(label)
      splits[split].append(Row(os.path.join(root, row['path']), label, row['path'] + trim,
                               start, end))
  return Source(tuple(sorted(names)), splits)


def _split_id(layout: str, split_id: int | None) -> int:
  split_id = 1 if split_id is None else split_id
  if split_id not in (1, 2, 3):
    raise ValueError(f'--split_id={split_id}: {layout} has the official splits 1, 2 and 3.')
  return split_id


def _lines(path: str) -> list[list[str]]:
  """The whitespace-separated fields of each non-empty line of `path`."""
  with open(path) as f:
    return [line.split() for line in f if line.strip()]


def ucf101(root: str, split_id: int | None = None) -> Source:
  """UCF-101's official train/test split `split_id` (1-3); classes in classInd.txt's order."""
  n = _split_id('ucf101', split_id)
  lists = os.path.join('ucfTrainTestlist', '{}')
  needed = ['UCF-101', *(lists.format(name) for name in
                         ('classInd.txt', f'trainlist0{n}.txt', f'testlist0{n}.txt'))]
  missing = _missing(root, needed)
  classes = []
  if lists.format('classInd.txt') not in missing:
    classes = [name for _, name in _lines(os.path.join(root, lists.format('classInd.txt')))]
    missing += _missing(root, [os.path.join('UCF-101', name) for name in classes])
  _check(root, 'ucf101', missing)
  by_lower = {name.lower(): name for name in classes}  # The lists' case differs at times.

  def rows(split):
    rows = []
    path = lists.format(f'{split}list0{n}.txt')
    for entry in _lines(os.path.join(root, path)):
      directory, _, file = entry[0].partition('/')
      if directory.lower() not in by_lower:
        raise ValueError(f"'{entry[0]}' in {os.path.join(root, path)} is not under a class of "
                         f'classInd.txt; use the list files that came with it.')
      name = by_lower[directory.lower()]
      rows.append(Row(os.path.join(root, 'UCF-101', name, file), name, os.path.splitext(file)[0]))
    return rows

  return Source(tuple(classes), {'train': rows('train'), 'test': rows('test')})


def hmdb51(root: str, split_id: int | None = None) -> Source:
  """HMDB-51's official split `split_id` (1-3): 1 = train, 2 = test, 0 = unused; classes
  sorted."""
  n = _split_id('hmdb51', split_id)
  splits_dir = 'testTrainMulti_7030_splits'
  suffix = f'_test_split{n}.txt'
  missing = _missing(root, [splits_dir])
  classes = []
  if not missing:
    classes = sorted(name[:-len(suffix)] for name in _files(os.path.join(root, splits_dir))
                     if name.endswith(suffix))
    missing += _missing(root, classes) or ([] if classes else
                                           [os.path.join(splits_dir, f'<class>{suffix}')])
  _check(root, 'hmdb51', missing)
  splits = {'train': [], 'test': []}
  for name in classes:
    for video, which in _lines(os.path.join(root, splits_dir, name + suffix)):
      if which in ('1', '2'):
        splits['train' if which == '1' else 'test'].append(
            Row(os.path.join(root, name, video), name, os.path.splitext(video)[0]))
  return Source(tuple(classes), splits)


def _clip_index(directory: str) -> dict[str, str]:
  """File name without extension -> path, for every file (or link, or directory named like a
  video) under `directory` (any depth)."""
  return {os.path.splitext(file)[0]: os.path.join(parent, file)
          for parent, dirs, files in os.walk(directory)
          for file in files + [name for name in dirs if _is_video_name(name)]}


def kinetics(root: str, layout: str = 'kinetics400') -> Source:
  """Kinetics clips of the annotation CSVs; classes sorted; video ids
  '<youtube_id>_<start:06d>_<end:06d>' (a missing clip gets the flat path, to be reported)."""
  found, missing = {}, []
  for split, names in _KINETICS_SPLITS.items():
    candidates = ([os.path.join('annotations', f'{name}.csv') for name in names], names)
    annotation, clips = (next((path for path in paths if os.path.exists(os.path.join(root, path))),
                              None) for paths in candidates)
    if annotation and clips:
      found[split] = (annotation, clips)
    elif split != 'test':
      missing += [' or '.join(paths) for paths, hit in zip(candidates, (annotation, clips))
                  if not hit]
  _check(root, layout, missing)
  splits = {}
  for split, (annotation, clips) in found.items():
    with open(os.path.join(root, annotation), newline='') as f:
      entries = list(csv.DictReader(f))
    if entries and 'label' not in entries[0]:
      continue  # An unlabelled test split.
    index = _clip_index(os.path.join(root, clips))
    splits[split] = []
    for entry in entries:
      clip = (f"{entry['youtube_id']}_{int(float(entry['time_start'])):06d}_"
              f"{int(float(entry['time_end'])):06d}")
      path = index.get(clip, os.path.join(root, clips, clip + '.mp4'))
      splits[split].append(Row(path, entry['label'], clip))
  names = sorted({row.label for rows in splits.values() for row in rows})
  return Source(tuple(names), splits)


def ssv2(root: str) -> Source:
  """Something-Something v2's train and validation splits; classes in labels.json's index order,
  an example's class its template without brackets; video ids: the numeric ids."""
  videos = '20bn-something-something-v2'
  jsons = [os.path.join('labels', f'{name}.json') for name in ('labels', 'train', 'validation')]
  _check(root, 'ssv2', _missing(root, [*jsons, videos]))

  def load(path):
    with open(os.path.join(root, path)) as f:
      return json.load(f)

  labels = load(jsons[0])
  classes = tuple(sorted(labels, key=lambda name: int(labels[name])))

  def rows(path):
    return [Row(os.path.join(root, videos, f"{entry['id']}.webm"),
                entry['template'].replace('[', '').replace(']', ''), str(entry['id']))
            for entry in load(path)]

  return Source(classes, {'train': rows(jsons[1]), 'validation': rows(jsons[2])})


_SOURCES = {'folder': folder, 'csv': annotations, 'ucf101': ucf101, 'hmdb51': hmdb51,
            **{name: functools.partial(kinetics, layout=name)
               for name in ('kinetics400', 'kinetics600', 'kinetics700')},
            'ssv2': ssv2}
LAYOUTS = tuple(_SOURCES)
_WITH_SPLIT_ID = ('ucf101', 'hmdb51')


def source(layout: str, root: str, split_id: int | None = None) -> Source:
  """The `Source` of directory `root` in `layout` (one of LAYOUTS); `split_id` (default 1) for
  ucf101 and hmdb51 only."""
  if layout not in LAYOUTS:
    raise ValueError(f"Unknown layout '{layout}'; pick one of {', '.join(LAYOUTS)}.")
  if split_id is not None and layout not in _WITH_SPLIT_ID:
    raise ValueError(f'--split_id is for {" and ".join(_WITH_SPLIT_ID)} only; {layout} has '
                     f'fixed splits.')
  if not os.path.isdir(root):
    _check(root, layout, ['the directory itself'])
  if layout in _WITH_SPLIT_ID:
    return _SOURCES[layout](root, split_id)
  return _SOURCES[layout](root)
