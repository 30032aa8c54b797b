"""Cube masks: tube and random masks, their exact counts, and the visible / masked split."""
import jax
import numpy as np

from vivit_jax.models import masking


def test_tube_mask_is_tiled_over_time_with_exact_count():
  grid, ratio = (4, 5, 6), 0.9
  mask = np.asarray(masking.tube_mask(jax.random.key(0), 8, grid, ratio))
  assert mask.shape == (8, 120) and mask.dtype == bool
  per_frame = mask.reshape(8, 4, 30)
  assert (per_frame == per_frame[:, :1]).all()  # The same spatial mask at every time step.
  assert (per_frame.sum(2) == round(0.9 * 30)).all()  # 27 per frame, every example.
  assert len({row.tobytes() for row in per_frame[:, 0]}) == 8  # Examples differ.
  np.testing.assert_array_equal(mask, masking.tube_mask(jax.random.key(0), 8, grid, ratio))
  assert not np.array_equal(mask, masking.tube_mask(jax.random.key(1), 8, grid, ratio))
  assert masking.num_masked('tube', ratio, grid) == 4 * 27


def test_random_mask_count_and_not_tubes():
  mask = np.asarray(masking.random_mask(jax.random.key(0), 4, (4, 5, 6), 0.6))
  assert (mask.sum(1) == round(0.6 * 120)).all()
  per_frame = mask.reshape(4, 4, 30)
  assert not (per_frame == per_frame[:, :1]).all()
  assert masking.num_masked('random', 0.6, (4, 5, 6)) == 72


def test_split_lists_visible_then_masked_in_increasing_order():
  mask = np.array([[True, False, False, True, False], [False, True, True, False, False]])
  visible, masked = masking.split(mask, 2)
  np.testing.assert_array_equal(visible, [[1, 2, 4], [0, 3, 4]])
  np.testing.assert_array_equal(masked, [[0, 3], [1, 2]])
  assert visible.dtype == masked.dtype == np.int32
