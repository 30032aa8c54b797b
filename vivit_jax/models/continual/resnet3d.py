"""CoResNet3D: the continual twin of resnet.ResNet3D (CoSlow, CoI3D), one frame at a time."""
import flax.linen as nn
import jax

from vivit_jax.models import resnet
from vivit_jax.models.continual import blocks, layers

BLOCKS = {'basic': blocks.CoBasicBlock, 'bottleneck': blocks.CoBottleneck}


class CoResNet3D(resnet.ResNet3D):
  """frame (B, H, W, C) -> logits (B, num_classes): ResNet3D's layers and parameter names, its
  temporal convs cached, the temporal max pool over the last `temporal_pool` frames (its stride
  is ContinualModel's), the global average over the last `pool_window` frames of stage 4."""
  pool_window: int = 1

  @property
  def block_class(self) -> type:
    return BLOCKS[resnet.DEPTHS[self.depth][0]]

  def temporal_windows(self) -> list[tuple[int, int]]:
    """(kernel, stride) of every temporal window, input to output."""
    windows = [(self.stem_temporal_kernel, 1)]
    for s, kernels in enumerate(self.block_temporal_kernels()):
      windows += [(kt, 1) for kt in kernels]  # ResNet3D's BasicBlocks: conv_b 1 x 3 x 3.
      if s == 0:
        windows.append((self.temporal_pool, self.temporal_pool))
    return windows + [(self.pool_window, 1)]

  def gated_state(self) -> tuple[str, ...]:
    """The state after the temporal pool, updated only when it emits."""
    return ('stage_2', 'stage_3', 'stage_4', 'pool') if self.temporal_pool > 1 else ()

  @nn.compact
  def __call__(self, frame: jax.Array) -> jax.Array:
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    x = layers.TemporalConv(self.base_width, (self.stem_temporal_kernel, 7, 7), 2,
                            name='stem_conv', **kw)(frame[:, None])
    x = nn.relu(resnet.batch_norm(False, name='stem_bn', **kw)(x))
    if self.stem_pool:
      x = nn.max_pool(x, (1, 3, 3), (1, 2, 2), padding=((0, 0), (1, 1), (1, 1)))
    for s, kernels in enumerate(self.block_temporal_kernels()):
      x = self._stage(x, False, s, kernels, stride=self.spatial_strides[s])
      if s == 0 and self.temporal_pool > 1:
        x = layers.TemporalMaxPool(self.temporal_pool, name='temporal_pool')(x)
    x = layers.RunningMean(self.pool_window, name='pool')(x)
    return resnet.classifier_head(x.reshape(x.shape[0], -1), self.num_classes, 0.0, False, **kw)
