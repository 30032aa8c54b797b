"""The static-clip probe keeps one frame and removes all motion."""
import numpy as np

from vivit_jax.data import probes


def test_repeat_middle_frame_keeps_frame_t_over_2_and_zeroes_flow():
  rng = np.random.default_rng(0)
  batch = {'video': rng.normal(size=(2, 5, 4, 4, 3)), 'flow': rng.normal(size=(2, 4, 4, 4, 2)),
           'label': np.array([3, 1])}
  static = probes.repeat_middle_frame(batch)
  assert static['video'].shape == batch['video'].shape
  for t in range(5):
    np.testing.assert_array_equal(static['video'][:, t], batch['video'][:, 2])
  np.testing.assert_array_equal(static['flow'], 0.0)
  np.testing.assert_array_equal(static['label'], batch['label'])
  assert not np.array_equal(batch['video'][:, 0], batch['video'][:, 2])  # Input left alone.
