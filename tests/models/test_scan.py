"""Scanned and unrolled parameter layouts: `stack` and `unstack` at any depth."""
import numpy as np
import pytest

from vivit_jax.models import scan


def _unrolled():
  """An encoder of 3 blocks (kernel (2, 4) each) beside a final norm, under a model dict."""
  blocks = {f'block_{i}': {'mlp': {'kernel': np.full((2, 4), i, np.float32)}} for i in range(3)}
  return {'head': {'bias': np.ones(5)}, 'encoder': dict(blocks, norm={'scale': np.ones(4)})}


def test_stack_then_unstack_round_trips():
  tree = _unrolled()
  stacked = scan.stack(tree)
  assert set(stacked['encoder']) == {'blocks', 'norm'}
  kernel = stacked['encoder']['blocks']['mlp']['kernel']
  assert kernel.shape == (3, 2, 4)
  np.testing.assert_array_equal(kernel[:, 0, 0], [0, 1, 2])
  np.testing.assert_array_equal(stacked['head']['bias'], tree['head']['bias'])
  back = scan.unstack(stacked)
  assert set(back['encoder']) == set(tree['encoder'])
  for i in range(3):
    np.testing.assert_array_equal(back['encoder'][f'block_{i}']['mlp']['kernel'],
                                  tree['encoder'][f'block_{i}']['mlp']['kernel'])
  assert scan.stack(stacked)['encoder'].keys() == stacked['encoder'].keys()  # Idempotent.


def test_stack_needs_contiguous_blocks():
  tree = _unrolled()
  del tree['encoder']['block_1']
  with pytest.raises(ValueError, match=r'block_0..block_\{L-1\}'):
    scan.stack(tree)


def test_is_stacked():
  assert scan.is_stacked(('encoder', 'blocks', 'mlp', 'kernel'))
  assert not scan.is_stacked(('encoder', 'block_0', 'mlp', 'kernel'))
