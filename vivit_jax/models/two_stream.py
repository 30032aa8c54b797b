"""Two-stream network (Simonyan & Zisserman 2014, "Two-Stream Convolutional Networks for Action
Recognition in Videos"), `TwoStream` ('two_stream'), with 2D ResNets as the two ConvNets.

  appearance  ResNet2D on one RGB frame, the clip's middle frame T // 2: (B, H, W, 3)
  motion      ResNet2D on the stacked optical flow of the clip's T - 1 frame pairs: flow
              (B, T - 1, H, W, 2) -> (B, H, W, 2 (T - 1)), channels (dx_0, dy_0, dx_1, dy_1, ...)
              as the paper's flow stacking; its stem kernel is (7, 7, 2 (T - 1), base_width)

Late fusion of class scores: logits = log((1 - w) softmax(appearance) + w softmax(motion)),
w = `fusion_weight` (0.5: the paper's fusion by averaging), so softmax(logits) is the fused class
probability that the train step's cross-entropy and the multi-view evaluator see, and the two
streams are trained jointly through it (the paper trains them separately).

The flow comes from the input pipeline: with config.dataset.flow=True batches carry 'flow'
(B, T - 1, S, S, 2) float32 (vivit_jax/data/flow.py: Farneback, clipped to +-20 px, scaled to
[-1, 1]), passed by the classification task as `flow=`.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp

from vivit_jax.models import fusion, inputs


def flow_shape(video_shape) -> tuple[int, ...]:
  """The flow input's shape (B, T - 1, H, W, 2) for videos of `video_shape` (B, T, H, W, C)."""
  b, t, h, w = video_shape[:4]
  return (b, t - 1, h, w, 2)


class TwoStream(fusion.FusingFrameResNet):
  """video (B, T, H, W, 3) float32 and flow (B, T - 1, H, W, 2) float32 -> logits (B, num_classes)
  float32; parameters under 'appearance' and 'motion' (each a ResNet2D's, with ResNet2D's fields).
  """
  fusion_weight: float = 0.5  # Weight of the motion stream's probabilities, in [0, 1].
  EXTRA_INPUTS = {'flow': flow_shape}  # Batch keys taken besides the video -> their shapes.

  def __post_init__(self):
    if not isinstance(self.fusion_weight, (int, float)) or not 0 <= self.fusion_weight <= 1:
      raise ValueError(f'config.model.fusion_weight={self.fusion_weight!r} must be a number in '
                       f'[0, 1] (the motion stream\'s share; 0.5 averages the two streams).')
    super().__post_init__()

  @nn.compact
  def __call__(self, video: jax.Array, *, flow: jax.Array, train: bool) -> jax.Array:
    inputs.check_video(video, 'TwoStream')
    b, t, h, w, _ = video.shape
    if t < 2:
      raise inputs.error(video, 'TwoStream', 'it needs clips of at least 2 frames (one flow '
                         'field); raise config.dataset.num_frames')
    inputs.check_video(flow, 'TwoStream', channels=2, name='flow')
    if flow.shape != (b, t - 1, h, w, 2):
      raise ValueError(f'TwoStream needs flow (B, T - 1, H, W, 2) = {(b, t - 1, h, w, 2)} for '
                       f'video {video.shape}, got {flow.shape}; set config.dataset.flow=True.')
    appearance = self.resnet2d(self.num_classes, 'appearance')(video[:, t // 2], train=train)
    motion = self.resnet2d(self.num_classes, 'motion')(fusion.stack_frames(flow), train=train)
    weight = float(self.fusion_weight)
    return fusion.average_probabilities(jnp.stack([appearance, motion], axis=1),
                                        (1.0 - weight, weight))
