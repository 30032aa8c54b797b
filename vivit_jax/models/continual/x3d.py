"""CoX3D: the continual twin of x3d.X3D, one frame at a time."""
import functools

import flax.linen as nn
import jax

from vivit_jax.models import resnet, x3d
from vivit_jax.models.continual import blocks, layers


class CoX3D(x3d.X3D):
  """frame (B, H, W, C) -> logits (B, num_classes): X3D's layers and parameter names, its
  temporal convs cached, squeeze-excitation over the last `se_window` frames (the clip model's
  over the whole clip: not equal), the global average over the last `pool_window` frames."""
  pool_window: int = 1
  se_window: int = 1

  def temporal_windows(self) -> list[tuple[int, int]]:
    """(kernel, stride) of every temporal window, input to output."""
    depth = sum(d for d, _, _ in self.stages())
    return ([(x3d.STEM_TEMPORAL_KERNEL, 1)] + [(3, 1)] * depth  # X3DBlock.temporal_kernel.
            + [(self.pool_window, 1)])

  def gated_state(self) -> tuple[str, ...]:
    return ()

  @nn.compact
  def __call__(self, frame: jax.Array) -> jax.Array:
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    stem = self.stem_width()
    x = resnet.conv(stem, (1, 3, 3), (1, 2, 2), name='stem_conv_s', **kw)(frame[:, None])
    x = layers.TemporalConv(stem, (x3d.STEM_TEMPORAL_KERNEL, 1, 1), groups=stem,
                            name='stem_conv_t', **kw)(x)
    x = nn.relu(resnet.batch_norm(False, name='stem_bn', **kw)(x))
    block = functools.partial(blocks.CoX3DBlock, se_window=self.se_window)
    for s, (depth, width, inner) in enumerate(self.stages()):
      se_width = x3d.round_width(inner, self.se_ratio) if self.se_ratio else 0
      x = x3d.X3DStage(depth, width, inner, se_width, block=block, name=f'stage_{s + 1}',
                       **kw)(x, train=False)
    x = resnet.conv(inner, (1, 1, 1), name='head_conv', **kw)(x)
    x = nn.relu(resnet.batch_norm(False, name='head_bn', **kw)(x))
    x = layers.RunningMean(self.pool_window, name='pool')(x)
    x = nn.relu(resnet.conv(self.head_width, (1, 1, 1), name='head_fc', **kw)(x))
    return resnet.classifier_head(x.reshape(x.shape[0], -1), self.num_classes, 0.0, False, **kw)
