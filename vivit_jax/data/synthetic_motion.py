"""`synthetic_motion`: a built-in TFDS video dataset where only the motion tells the class.

Each clip is 16 frames of 32x32 RGB (`video`: uint8 (16, 32, 32, 3)): a static, smooth, coloured
low-frequency texture (different per clip), grey Gaussian pixel noise (std 0.03 of the range, the
same on R, G and B) redrawn every frame, and one
soft-edged bar of random colour, size, aspect and orientation that contrasts with the background.
The bar's motion is the `label` (`CLASS_NAMES`):

  0-7  {right, left, up, down} x {slow, fast}   slow 0.4-0.7, fast 1.1-1.5 px/frame; the bar's
                                                centre stays >= 4 px inside the frame all clip long
  8 grow, 9 shrink                              size x2 (grow) or x1/2 (shrink) in 16 frames

No single frame tells the class: orientation and size have the same distribution in every frame of
every class, and so does the centre position up to its spread (a slow bar's path leaves more room
to place it); a small random jitter perturbs each frame.

Horizontal flips change labels (right <-> left), so `config.dataset.flip` must stay False for
this dataset.

Built locally (no download) and deterministically: examples are rendered with vectorised numpy in
chunks, each from `np.random.default_rng((split seed, chunk index))`. Train: 6400 clips, test: 1280,
each exactly balanced over the 10 classes. Building both splits takes ~7 s on 2 CPU cores (plus
~5 s to import TensorFlow in a fresh process); each chunk renders in a worker thread while TFDS
writes the previous one.
"""
import concurrent.futures

from etils import epath
import numpy as np
import tensorflow_datasets as tfds

CLASS_NAMES = ('right_slow', 'right_fast', 'left_slow', 'left_fast', 'up_slow', 'up_fast',
               'down_slow', 'down_fast', 'grow', 'shrink')
NUM_FRAMES, SIZE = 16, 32
CHUNK = 320  # Clips rendered at once; a multiple of the 10 classes.

_CENTRE_RANGE = (4.0, SIZE - 5.0)  # Where the bar's centre may be, in pixel coordinates.
_DIRECTIONS = np.array([[1, 0], [-1, 0], [0, -1], [0, 1]])  # right, left, up, down: (x, y down).
_SPEEDS = ((0.4, 0.7), (1.1, 1.5))  # slow, fast px/frame; 15 fast steps cross ~the centre range.
_HALF_LENGTH = (2.8, 4.2)  # Before the size factor 2**r, r in [0, 1] (grow/shrink: r = t/15).
_ASPECT = (0.3, 0.45)  # Half-width / half-length.
_EDGE = 0.35  # px; softness of the sigmoid edge (anti-aliasing).
_NOISE = 0.03  # Pixel noise std, in [0, 1] units.


def _virtual_path(rng, speed, tau) -> np.ndarray:
  """Positions (n, frames) along a random straight path at `speed` (n, 1) px/frame at times tau.

  A moving coordinate uses tau = t / 15 (up to sign); a static one a random single tau, so a
  coordinate has the same per-frame distribution whether it moves or not.
  """
  lo, hi = _CENTRE_RANGE
  span = (NUM_FRAMES - 1) * speed
  middle = rng.uniform(lo + span / 2, hi - span / 2)
  return middle + (tau - 0.5) * span


def _bar_parameters(rng, labels) -> tuple:
  """Centres x, y, angle, half-length, half-width of the bar: each (n, NUM_FRAMES) float."""
  n = len(labels)
  tau = np.linspace(0.0, 1.0, NUM_FRAMES)[None]
  static_tau = rng.integers(0, NUM_FRAMES, size=(2, n, 1)) / (NUM_FRAMES - 1)
  moving = labels < 2 * len(_DIRECTIONS)
  direction = np.where(moving[:, None], _DIRECTIONS[np.minimum(labels // 2, 3)], 0)  # (n, 2).
  fast = np.where(moving, labels % 2, rng.integers(0, 2, size=n)).astype(bool)[:, None]
  speed = np.where(fast, rng.uniform(*_SPEEDS[1], size=(n, 1)),
                   rng.uniform(*_SPEEDS[0], size=(n, 1)))
  centres = [_virtual_path(rng, speed,
                           np.where(d[:, None] == 0, s, 0.5 + d[:, None] * (tau - 0.5)))
             for d, s in zip(direction.T, static_tau)]
  angle = rng.uniform(0, np.pi, size=(n, 1)) + np.zeros((1, NUM_FRAMES))
  static_exponent = rng.integers(0, NUM_FRAMES, size=(n, 1)) / (NUM_FRAMES - 1)
  is_grow, is_shrink = labels[:, None] == 8, labels[:, None] == 9
  exponent = np.select([is_grow, is_shrink], [tau, 1 - tau], static_exponent)
  half_length = rng.uniform(*_HALF_LENGTH, size=(n, 1)) * 2.0 ** exponent
  half_width = half_length * rng.uniform(*_ASPECT, size=(n, 1))

  def jitter(scale):
    return rng.normal(0.0, scale, size=(n, NUM_FRAMES))

  size_jitter = np.exp(jitter(0.02))
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
  SPLITS = {'train': (6400, 1), 'test': (1280, 2)}  # name: (number of clips, seed).
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
