"""The image-CNN baselines of Karpathy et al. 2014 ("Large-scale Video Classification with
Convolutional Neural Networks"), built on `resnet.ResNet2D` (parameters under 'resnet'):

  SingleFrame  'single_frame'  a 2D ResNet on every frame; class probabilities averaged over frames
  LateFusion   'late_fusion'   a 2D ResNet on `num_fusion_frames` frames spread over the clip; their
                               pooled features concatenated into an MLP ('concat', Karpathy's late
                               fusion) or their feature maps averaged over space and time into one
                               linear layer ('pool')
  EarlyFusion  'early_fusion'  the frames stacked into channels (B, H, W, T * C): only the first
                               convolution sees time, the rest is the 2D ResNet

All take video (B, T, H, W, C) float32 and return logits (B, num_classes) float32; the ResNet
fields (depth, base_width, zero_init_residual, dropout_rate, dtypes) are ResNet2D's. None of
them can tell a clip from the same frames shuffled except late fusion by concatenation and early
fusion, which see frame order but only through one layer.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vivit_jax.models import frame_resnet, resnet
from vivit_jax.models.inputs import check_video
from vivit_jax.models.layers import check_int, partitioned

FUSIONS = ('concat', 'pool')


def stack_frames(video: jax.Array) -> jax.Array:
  """(B, T, H, W, C) -> (B, H, W, T * C): frames stacked into channels, channel t * C + c."""
  b, t, h, w, c = video.shape
  return jnp.transpose(video, (0, 2, 3, 1, 4)).reshape(b, h, w, t * c)


def average_probabilities(logits: jax.Array, weights) -> jax.Array:
  """log(sum_i weights[i] softmax(logits[:, i])) for logits (B, N, K) and weights (N,) summing
  to 1: logits whose softmax is the weighted mean of the N softmax distributions (B, K)."""
  weights = jnp.asarray(weights, jnp.float32)[None, :, None]
  return jax.nn.logsumexp(jax.nn.log_softmax(logits.astype(jnp.float32)), axis=1, b=weights)


class FusingFrameResNet(frame_resnet.FrameResNet):
  """frame_resnet.FrameResNet with num_classes >= 1: the models that fuse class scores or head a
  fused feature (this file and two_stream.py)."""

  def __post_init__(self):
    check_int('num_classes', self.num_classes,
                       f'for {type(self).__name__}: it fuses class scores or heads a fused '
                       f'feature')
    super().__post_init__()


class SingleFrame(FusingFrameResNet):
  """Karpathy's single-frame model: video (B, T, H, W, C) -> logits (B, num_classes) float32.

  The 2D ResNet classifies each of the T frames (frames folded into the batch); the output is
  log(mean_t softmax(frame logits_t)), so softmax(output) is the frame-averaged class probability:
  that is what the train step's cross-entropy (-log of the mean probability of the label) and the
  multi-view evaluator (which averages softmax over views) see. The output does not change when
  the frames are permuted: the model cannot see motion.
  """

  @nn.compact
  def __call__(self, video: jax.Array, *, train: bool) -> jax.Array:
    check_video(video, 'SingleFrame')
    b, t = video.shape[:2]
    logits = self.resnet2d(self.num_classes, 'resnet')(video.reshape((b * t,) + video.shape[2:]),
                                                       train=train)
    return average_probabilities(logits.reshape(b, t, -1), np.full(t, 1.0 / t))


class LateFusion(FusingFrameResNet):
  """Late fusion of per-frame 2D ResNets: video (B, T, H, W, C) -> logits (B, num_classes).

  `num_fusion_frames` frames (0: all T) spread evenly over the clip, first and last included
  (indices round(linspace(0, T - 1, n)); Karpathy's 2 frames 15 apart = 2 of a 16-frame clip at
  stride 1), run through one shared 2D ResNet, then
    'concat': their pooled features (B, n * D) in frame order -> Dense `fc` (hidden_width, ReLU)
              -> dropout -> zero-initialised Dense `head` (Karpathy: towers merged in the first
              fully connected layer); sensitive to frame order.
    'pool':   their feature maps averaged over space and time (B, D) -> dropout -> the ResNet's
              linear `head` (ResNet2D on the selected frames); blind to frame order.
  """
  fusion: str = 'concat'  # 'concat' (MLP on concatenated frame features) or 'pool'.
  num_fusion_frames: int = 0  # Frames fused; 0: every frame of the clip.
  hidden_width: int = 4096  # 'concat': width of the fully connected layer (Karpathy's fc 4096).

  def __post_init__(self):
    if self.fusion not in FUSIONS:
      raise ValueError(f"config.model.fusion='{self.fusion}' is not a late fusion; use "
                       f"'concat' or 'pool'.")
    check_int('num_fusion_frames', self.num_fusion_frames, '0: every frame', minimum=0)
    check_int('hidden_width', self.hidden_width, "the fc's width")
    super().__post_init__()

  def frame_indices(self, num_frames: int) -> np.ndarray:
    """The fused frames' indices in a clip of `num_frames` frames."""
    n = self.num_fusion_frames or num_frames
    if n > num_frames:
      raise ValueError(f'config.model.num_fusion_frames={n} exceeds the clip length '
                       f'{num_frames}; lower it or raise config.dataset.num_frames.')
    return np.round(np.linspace(0, num_frames - 1, n)).astype(int)

  @nn.compact
  def __call__(self, video: jax.Array, *, train: bool) -> jax.Array:
    check_video(video, 'LateFusion')
    frames = video[:, self.frame_indices(video.shape[1])]
    if self.fusion == 'pool':
      return self.resnet2d(self.num_classes, 'resnet')(frames, train=train)
    b, n = frames.shape[:2]
    features = self.resnet2d(0, 'resnet')(frames.reshape((b * n,) + frames.shape[2:]),
                                          train=train)
    x = nn.Dense(self.hidden_width, dtype=self.dtype, param_dtype=self.param_dtype,
                 kernel_init=partitioned(nn.initializers.he_normal(), ('conv_out', 'mlp')),
                 bias_init=partitioned(nn.initializers.zeros, ('mlp',)),
                 name='fc')(features.reshape(b, -1))
    return resnet.classifier_head(nn.relu(x), self.num_classes, self.dropout_rate, train,
                                  dtype=self.dtype, param_dtype=self.param_dtype)


class EarlyFusion(FusingFrameResNet):
  """Early fusion: video (B, T, H, W, C) -> stacked (B, H, W, T * C) -> the 2D ResNet -> logits
  (B, num_classes). Its stem kernel is (7, 7, T * C, base_width), the only layer that sees time
  (Karpathy's first layer: 11 x 11 x 3 x 10 filters over 10 frames); the params are a ResNet2D's
  on T * C channel images, so T is fixed by the variables.
  """

  @nn.compact
  def __call__(self, video: jax.Array, *, train: bool) -> jax.Array:
    check_video(video, 'EarlyFusion')
    return self.resnet2d(self.num_classes, 'resnet')(stack_frames(video), train=train)
