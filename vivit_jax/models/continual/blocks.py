"""The clip blocks' continual twins: same code and parameters, temporal convs cached
(layers.TemporalConv) and the shortcut delayed by the frames its branch looks ahead."""
from typing import Sequence

import jax

from vivit_jax.models import resnet, x3d
from vivit_jax.models.continual import layers


class ContinualBlock:
  """Mixin before a resnet.Block subclass: its convs with kt > 1 become TemporalConvs and its
  shortcut waits sum((kt - 1) / 2) frames over `branch_kernels`."""

  def branch_kernels(self) -> Sequence[int]:
    """The temporal kernels on the block's residual branch, in order."""
    return (self.temporal_kernel,)

  def conv(self, x: jax.Array, features: int, kernel: Sequence[int], strides: Sequence[int],
           train: bool, name: str, groups: int = 1) -> jax.Array:
    if kernel[0] == 1:
      return super().conv(x, features, kernel, strides, train, name, groups)
    return layers.TemporalConv(features, tuple(kernel), strides[1], groups, dtype=self.dtype,
                               param_dtype=self.param_dtype, name=name)(x)

  def shortcut(self, x: jax.Array, train: bool) -> jax.Array:
    delay = sum((k - 1) // 2 for k in self.branch_kernels())
    return super().shortcut(layers.Delay(delay, name='shortcut_delay')(x) if delay else x, train)


class CoBasicBlock(ContinualBlock, resnet.BasicBlock):

  def branch_kernels(self) -> Sequence[int]:
    return (self.temporal_kernel, self.temporal_kernel_b)


class CoBottleneck(ContinualBlock, resnet.Bottleneck):
  pass


class CoSqueezeExcite(x3d.SqueezeExcite):
  """Squeeze-excitation whose squeeze is the running mean of the last `window` frames (the clip
  model's mean over the whole clip would need future frames)."""
  window: int = 1

  def squeeze(self, x: jax.Array) -> jax.Array:
    return layers.RunningMean(self.window, name='pool')(x)


class CoX3DBlock(ContinualBlock, x3d.X3DBlock):
  se_window: int = 1  # Frames of CoSqueezeExcite's running mean.

  def excite(self, y: jax.Array) -> jax.Array:
    return CoSqueezeExcite(self.se_width, window=self.se_window, name='se', dtype=self.dtype,
                           param_dtype=self.param_dtype)(y)
