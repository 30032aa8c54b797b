"""`synthetic_motion`: a built-in TFDS video dataset where only the motion tells the class.

Each clip is 16 frames of 32x32 RGB (`video`: uint8 (16, 32, 32, 3)): a static, smooth, coloured
low-frequency texture (different per clip), grey Gaussian pixel noise (std 0.03 of the range, the
same on R, G and B) redrawn every frame, and one
soft-edged bar of random colour, size, aspect and orientation that contrasts with the background.
The bar's motion is the `label` (`CLASS_NAMES`):

  0 move_right, 1 move_left, 2 move_up, 3 move_down   1.0-1.5 px/frame; the bar's centre stays
                                                      >= 4 px inside the frame all clip long
  4 rotate_clockwise, 5 rotate_counterclockwise       12-20 degrees/frame about a fixed pivot
                                                      0.6 half-lengths off the bar's centre
  6 grow, 7 shrink                                    size x2 (grow) or x1/2 (shrink) in 16 frames

No single frame tells the class: the centre position, orientation and size of the bar have the same
distribution in every frame of every class, and a small random jitter perturbs each frame.

Horizontal flips change labels (move_right <-> move_left, clockwise <-> counterclockwise), so
`config.dataset.flip` must stay False for this dataset.

Built locally (no download) and deterministically: examples are rendered with vectorised numpy in
chunks, each from `np.random.default_rng((split seed, chunk index))`. Train: 6144 clips, test: 1024,
each exactly balanced over the 8 classes. Building both splits takes ~7 s on 2 CPU cores (plus
~5 s to import TensorFlow in a fresh process); each chunk renders in a worker thread while TFDS
writes the previous one.
"""
import concurrent.futures

from etils import epath
import numpy as np
import tensorflow_datasets as tfds

CLASS_NAMES = ('move_right', 'move_left', 'move_up', 'move_down',
               'rotate_clockwise', 'rotate_counterclockwise', 'grow', 'shrink')
NUM_FRAMES, SIZE = 16, 32
CHUNK = 256  # Clips rendered at once; a multiple of the 8 classes.

_CENTRE_RANGE = (4.0, SIZE - 5.0)  # Where the bar's centre may be, in pixel coordinates.
_SPEED = (1.0, 1.5)  # px/frame; 15 steps of the fastest cross ~all of the centre range.
_ROTATION = (12.0, 20.0)  # degrees/frame.
_HALF_LENGTH = (3.5, 5.5)  # Before the size factor 2**r, r in [0, 1] (grow/shrink: r = t/15).
_PIVOT_OFFSET = 0.6  # Rotation pivot's distance from the bar's centre, in half-lengths.
_ASPECT = (0.3, 0.45)  # Half-width / half-length.
_EDGE = 0.35  # px; softness of the sigmoid edge (anti-aliasing).
_NOISE = 0.03  # Pixel noise std, in [0, 1] units.


def _virtual_path(rng, n: int, tau) -> np.ndarray:
  """Positions (n, frames) along a random straight path across the centre range at times tau.

  A moving coordinate uses tau = t / 15 (up to sign); a static one a random single tau, so every
  coordinate of every class has the same per-frame distribution.
  """
  lo, hi = _CENTRE_RANGE
  span = (NUM_FRAMES - 1) * rng.uniform(*_SPEED, size=(n, 1))
  middle = rng.uniform(lo + span / 2, hi - span / 2)
  return middle + (tau - 0.5) * span


def _bar_parameters(rng, labels) -> tuple:
  """Centres x, y, angle, half-length, half-width of the bar: each (n, NUM_FRAMES) float."""
  n = len(labels)
  tau = np.linspace(0.0, 1.0, NUM_FRAMES)[None]
  static_tau = rng.integers(0, NUM_FRAMES, size=(2, n, 1)) / (NUM_FRAMES - 1)
  direction = np.array([[1, 0], [-1, 0], [0, -1], [0, 1]] + [[0, 0]] * 4)[labels]  # (n, 2): x, y.
  centres = [_virtual_path(rng, n, np.where(d[:, None] == 0, s, 0.5 + d[:, None] * (tau - 0.5)))
             for d, s in zip(direction.T, static_tau)]
  spin = np.select([labels == 4, labels == 5], [1.0, -1.0], 0.0)[:, None]  # y points down.
  angle = (rng.uniform(0, 2 * np.pi, size=(n, 1))
           + spin * np.deg2rad(rng.uniform(*_ROTATION, size=(n, 1))) * np.arange(NUM_FRAMES))
  static_exponent = rng.integers(0, NUM_FRAMES, size=(n, 1)) / (NUM_FRAMES - 1)
  is_grow, is_shrink = labels[:, None] == 6, labels[:, None] == 7
  exponent = np.select([is_grow, is_shrink], [tau, 1 - tau], static_exponent)
  half_length = rng.uniform(*_HALF_LENGTH, size=(n, 1)) * 2.0 ** exponent
  half_width = half_length * rng.uniform(*_ASPECT, size=(n, 1))

  def jitter(scale):
    return rng.normal(0.0, scale, size=(n, NUM_FRAMES))

  size_jitter = np.exp(jitter(0.02))
  # Rotating bars turn about a pivot off their centre (like a clock hand), so the sense of
  # rotation shows as motion along a circle, not only as a change of orientation.
  offset = np.abs(spin) * _PIVOT_OFFSET * half_length
  centres = (centres[0] + offset * np.cos(angle), centres[1] + offset * np.sin(angle))
  return (centres[0] + jitter(0.15), centres[1] + jitter(0.15), angle + jitter(np.deg2rad(1.0)),
          half_length * size_jitter, half_width * size_jitter)


def _coverage(cx, cy, angle, half_length, half_width) -> np.ndarray:
  """Anti-aliased coverage (n, T, SIZE, SIZE, 1) in [0, 1] of the bar with (n, T) parameters.

  sigmoid(-d / _EDGE) of the bar's (approximate) signed distance d = max(|along| - half_length,
  |across| - half_width), in pixels.
  """
  cx, cy, angle, half_length, half_width = (p[..., None, None].astype(np.float32)
                                            for p in (cx, cy, angle, half_length, half_width))
  grid = np.arange(SIZE, dtype=np.float32)
  dx, dy = grid - cx, grid[:, None] - cy  # (n, T, 1, SIZE), (n, T, SIZE, 1).
  cos, sin = np.cos(angle), np.sin(angle)
  along = np.abs(dx * cos + dy * sin)
  along -= half_length
  across = np.abs(dy * cos - dx * sin)
  across -= half_width
  coverage = np.maximum(along, across, out=along)
  coverage *= -0.5 / _EDGE
  np.tanh(coverage, out=coverage)  # sigmoid(x) = (1 + tanh(x / 2)) / 2.
  coverage += 1.0
  coverage *= 0.5
  return coverage[..., None]


def _colours(rng, n: int) -> tuple:
  """Background texture (n, SIZE, SIZE, 3) and bar colour (n, 1, 1, 3), float32 in [0, 255].

  Background and bar lie on opposite sides of mid-grey in every channel (contrast >= ~0.17 * 255).
  """
  side = rng.choice([-1.0, 1.0], size=(n, 1))
  base = 0.5 + side * rng.uniform(0.12, 0.3, size=(n, 3))
  bar = 0.5 - side * rng.uniform(0.15, 0.4, size=(n, 3))
  grid = 4  # Control points every SIZE / grid pixels, bilinearly interpolated.
  coord = np.arange(SIZE) * grid / (SIZE - 1)
  weights = np.maximum(0.0, 1.0 - np.abs(coord[:, None] - np.arange(grid + 1)))  # (SIZE, grid+1).
  control = rng.uniform(-0.1, 0.1, size=(n, 3, grid + 1, grid + 1))
  texture = (weights @ control @ weights.T).transpose(0, 2, 3, 1)  # (n, SIZE, SIZE, 3).
  background = base[:, None, None] + texture
  return (255 * background).astype(np.float32), (255 * bar[:, None, None]).astype(np.float32)


def render_chunk(rng: np.random.Generator, n: int) -> tuple:
  """n clips (n % 8 == 0): videos uint8 (n, 16, 32, 32, 3), labels int64 (n,), exactly balanced."""
  labels = rng.permutation(np.arange(n) % len(CLASS_NAMES))
  coverage = _coverage(*_bar_parameters(rng, labels))
  background, bar = _colours(rng, n)
  video = coverage * (bar - background)[:, None]
  video += background[:, None] + 0.5  # + 0.5: the uint8 cast below then rounds.
  noise = rng.standard_normal(size=coverage.shape, dtype=np.float32)  # Grey: same on R, G, B.
  noise *= 255 * _NOISE
  video += noise
  np.clip(video, 0, 255, out=video)
  return video.astype(np.uint8), labels


class SyntheticMotion(tfds.core.GeneratorBasedBuilder):
  """Synthetic 16x32x32 clips of one moving bar; the motion is the class (see module docstring)."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  SPLITS = {'train': (6144, 1), 'test': (1024, 2)}  # name: (number of clips, seed).
  # TFDS's own lookup of this file needs `importlib_resources`, which TFDS does not install.
  code_path = epath.Path(__file__)

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict({
            'video': tfds.features.Tensor(shape=(NUM_FRAMES, SIZE, SIZE, 3), dtype=np.uint8,
                                          encoding=tfds.features.Encoding.BYTES),
            'label': tfds.features.ClassLabel(names=CLASS_NAMES),
        }),
        supervised_keys=('video', 'label'),
        disable_shuffling=True,  # Already in random order; keeps the build fast and reproducible.
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download.
    return {name: self._generate_examples(num, seed) for name, (num, seed) in self.SPLITS.items()}

  def _generate_examples(self, num_examples: int, seed: int):
    """Yields (index, {'video': (16, 32, 32, 3) uint8, 'label': int}) in index order.

    The next chunk renders in a worker thread (numpy releases the GIL) while TFDS writes this one.
    """
    starts = range(0, num_examples, CHUNK)

    def render(chunk):
      return render_chunk(np.random.default_rng((seed, chunk)), CHUNK)

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
      pending = pool.submit(render, 0)
      for chunk, first in enumerate(starts):
        videos, labels = pending.result()
        if chunk + 1 < len(starts):
          pending = pool.submit(render, chunk + 1)
        for i in range(min(CHUNK, num_examples - first)):
          yield first + i, {'video': videos[i], 'label': labels[i]}
