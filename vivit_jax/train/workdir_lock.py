"""One training run per workdir: WORKDIR/lock.json names the run holding it (host, pid, start).

A second `train.loop.run` on the same workdir is refused while the holder lives; a lock whose
process has died on this host is stale and taken over. Readers (`vivit_jax.evaluate`,
`vivit_jax.predict`) take no lock. Local workdirs are locked atomically (O_EXCL); a bucket
(gs://...) is checked, then written (no atomic create on object stores).
"""
import contextlib
import json
import logging
import os
import socket
import time

import jax
import tensorflow as tf

log = logging.getLogger('vivit_jax')

LOCK_FILE = 'lock.json'


class WorkdirBusyError(OSError):
  """Another live run holds the workdir."""


def _writable_dir(workdir: str):
  """Creates `workdir` if needed; OSError naming the fix if it is a file or not writable."""
  if tf.io.gfile.exists(workdir) and not tf.io.gfile.isdir(workdir):
    raise NotADirectoryError(f'--workdir {workdir} is a file, not a directory: pick another '
                             f'--workdir.')
  try:
    tf.io.gfile.makedirs(workdir)
  except (OSError, tf.errors.OpError) as e:
    raise PermissionError(f'Cannot create --workdir {workdir} ({e}): pick a writable '
                          f'directory.') from None
  if '://' not in workdir and not os.access(workdir, os.W_OK | os.X_OK):
    raise PermissionError(f'--workdir {workdir} is not writable: pick a writable directory '
                          f'(or fix its permissions).')


def _create(path: str, text: str):
  """Writes `text` to a new file `path`; FileExistsError if it exists."""
  if '://' in path:
    if tf.io.gfile.exists(path):
      raise FileExistsError(path)
    with tf.io.gfile.GFile(path, 'w') as f:
      f.write(text)
    return
  with os.fdopen(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY), 'w') as f:
    f.write(text)


HALF_WRITTEN_GRACE_S = 10  # An unreadable lock younger than this is being written.


def _read(path: str) -> dict:
  try:
    with tf.io.gfile.GFile(path) as f:
      return json.load(f)
  except (json.JSONDecodeError, tf.errors.NotFoundError):
    return {}  # Being written, or half-written by a process that died.


def _alive(holder: dict, path: str) -> bool | None:
  """Whether the holder's process lives: True/False on this host, None on another host."""
  if not holder:
    age = time.time() - tf.io.gfile.stat(path).mtime_nsec / 1e9
    return age < HALF_WRITTEN_GRACE_S
  if holder.get('host') != socket.gethostname():
    return None
  try:
    os.kill(int(holder.get('pid', -1)), 0)
  except ProcessLookupError:
    return False
  except (PermissionError, ValueError):
    return True  # Exists under another user.
  return True


@contextlib.contextmanager
def hold(workdir: str):
  """Holds WORKDIR/lock.json for the body (process 0 only: one lock per multi-host run).

  Raises:
    WorkdirBusyError: a live run (or one on another host) holds it; the message names it.
    NotADirectoryError, PermissionError: `workdir` is a file or not writable.
  """
  if jax.process_index() != 0:
    yield
    return
  _writable_dir(workdir)
  path = os.path.join(workdir, LOCK_FILE)
  me = {'host': socket.gethostname(), 'pid': os.getpid(),
        'started': time.strftime('%Y-%m-%d %H:%M:%S')}
  while True:
    try:
      _create(path, json.dumps(me))
      break
    except FileExistsError:
      try:
        holder = _read(path)
        if _alive(holder, path) is not False:
          raise WorkdirBusyError(
              f'Workdir {workdir} is in use by another training run (pid {holder.get("pid")} '
              f'on host {holder.get("host")}, started {holder.get("started")}). Wait for it, '
              f'use another --workdir, or, if that run is gone, delete {path}. '
              f'(vivit_jax.evaluate and vivit_jax.predict may read the workdir meanwhile.)'
          ) from None
        log.warning('Taking over the stale lock %s of a run that is gone (%s).', path, holder)
        tf.io.gfile.remove(path)
      except tf.errors.NotFoundError:
        pass  # Released meanwhile: try again.
  try:
    yield
  finally:
    if _read(path).get('pid') == me['pid']:
      tf.io.gfile.remove(path)
