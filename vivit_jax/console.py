"""Console output of the command-line entry points: progress lines on stdout, library chatter off."""
import logging as std_logging
import sys

from absl import logging


def show_progress():
  """Our progress lines (logger 'vivit_jax') on stdout; libraries' INFO chatter stays quiet."""
  handler = std_logging.StreamHandler(sys.stdout)
  handler.setFormatter(std_logging.Formatter('%(asctime)s %(message)s', '%H:%M:%S'))
  log = std_logging.getLogger('vivit_jax')
  log.addHandler(handler)
  log.setLevel(std_logging.INFO)
  log.propagate = False
  logging.set_verbosity(logging.WARNING)
