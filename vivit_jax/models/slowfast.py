"""SlowFast networks (Feichtenhofer et al. 2019, arXiv:1812.03982) as 'slowfast'.

Two ResNet3D trunks (resnet.py's stem, Stage and Bottleneck) see the same clip at two frame rates:

  fast   video (B, T, H, W, C): T frames, width base_width / beta_inv, temporal kernels 5 in the
         stem and 3 in every block (PySlowFast _TEMPORAL_KERNEL_BASIS['slowfast'])
  slow   video[:, ::alpha] (B, T / alpha, H, W, C): width base_width, temporal kernel 1 in the
         stem, res2 and res3 and 3 in res4 and res5 (the Slow-only net of resnet.ResNet3D)

Neither pathway pools or strides time (pool1 is 1x3x3). After the stem and after res2, res3 and
res4 a lateral connection `fuse_{i}` takes the fast features (B, T, h, w, c), applies a
fusion_kernel x 1 x 1 conv with temporal stride alpha to fusion_conv_channel_ratio * c channels,
BN and ReLU, giving (B, T / alpha, h, w, 2c), and concatenates it after the slow features' channels
(PySlowFast FuseFastToSlow); the next slow stage's first convs and projection shortcut see the
wider input. The head averages each pathway over T, h, w, concatenates [slow, fast] (B,
base_width * 32 * (1 + 1 / beta_inv) for bottlenecks) and applies dropout and one Dense.

Parameter paths: slow/{stem_conv, stem_bn, stage_1..4} and fast/... exactly as ResNet3D's (without
its head), fuse_{0..3}/{conv, bn}, head. Non-local blocks (`nonlocal_blocks`, `nonlocal_pool`, the
semantics of ResNet3D) go into the slow pathway only.

Speed ratio alpha, fusion kernel: PySlowFast configs/Kinetics/SLOWFAST_4x16_R50.yaml (the paper's
Table 1 model) has ALPHA 8, BETA_INV 8, FUSION_CONV_CHANNEL_RATIO 2, FUSION_KERNEL_SZ 5 (the
defaults here); SLOWFAST_8x8_R50.yaml has ALPHA 4 and FUSION_KERNEL_SZ 7 with the same 32-frame
fast clip, so its slow pathway sees 8 frames. PySlowFast samples the slow frames with
linspace(0, T - 1, T / alpha) (frames 0, 4, 8, 13, ... of 32); here they are every alpha-th
frame from the first (0, 4, 8, 12, ...), as in the paper.
"""
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from vivit_jax.models import inputs, resnet
from vivit_jax.models.layers import Dtype, check_int

SLOW_TEMPORAL_KERNELS = (1, 1, 3, 3)  # res2..res5; stem 1.
FAST_TEMPORAL_KERNELS = (3, 3, 3, 3)
FAST_STEM_TEMPORAL_KERNEL = 5


class Pathway(resnet.ResNet3D):
  """A ResNet3D trunk run piece by piece, so laterals can join between pieces: `part` 0 is the
  stem, (B, T, H, W, 3) -> (B, T, H / 4, W / 4, base_width); part s in 1..4 is stage s. Same
  parameter paths as ResNet3D (no head)."""

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool, part: int) -> jax.Array:
    if part == 0:
      return self._stem(x, train, self.stem_temporal_kernel, self.stem_pool)
    return self._stage_3d(x, train, part - 1)


class FuseFastToSlow(nn.Module):
  """Lateral connection: slow (B, t, h, w, Cs), fast (B, t * alpha, h, w, Cf) -> (B, t, h, w,
  Cs + ratio * Cf), the slow features followed by ReLU(BN(conv(fast))), conv fusion_kernel x 1 x 1
  with temporal stride alpha and padding fusion_kernel // 2."""
  alpha: int
  fusion_kernel: int
  channel_ratio: int
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, slow: jax.Array, fast: jax.Array, *, train: bool) -> jax.Array:
    y = resnet.conv(fast.shape[-1] * self.channel_ratio, (self.fusion_kernel, 1, 1),
                    (self.alpha, 1, 1), dtype=self.dtype, param_dtype=self.param_dtype,
                    name='conv')(fast)
    y = nn.relu(resnet.batch_norm(train, dtype=self.dtype, param_dtype=self.param_dtype,
                                  name='bn')(y))
    return jnp.concatenate([slow, y], axis=-1)


class SlowFast(resnet._ResNet):  # pylint: disable=protected-access
  """SlowFast: video (B, T, H, W, C) float32, T the fast pathway's frames and divisible by alpha
  -> logits (B, num_classes) float32 (num_classes 0: the pooled [slow, fast] features).

  Presets: SlowFast-R50 8x8 (configs/cnn/slowfast_r50_k400.py): depth 50, alpha 4, fusion_kernel
  7 on 32-frame clips, 34.57M parameters; 4x16: alpha 8, fusion_kernel 5 (the defaults). depth
  101 gives SlowFast-R101; the smaller resnet.DEPTHS (basic blocks) serve tests.
  """
  alpha: int = 8  # Speed ratio: the slow pathway sees every alpha-th frame.
  beta_inv: int = 8  # Channel ratio 1 / beta: the fast pathway's width is base_width / beta_inv.
  fusion_kernel: int = 5  # Temporal kernel of the lateral convs.
  fusion_conv_channel_ratio: int = 2  # Lateral output width / fast width.
  nonlocal_blocks: Sequence[Sequence[int]] = ((), (), (), ())  # Slow pathway, as ResNet3D's.
  nonlocal_pool: Sequence[int] = (1, 2, 2)

  def __post_init__(self):
    super().__post_init__()  # Checks depth and base_width.
    check_int('alpha', self.alpha, 'the speed ratio; 8 in SlowFast 4x16, 4 in 8x8')
    check_int('beta_inv', self.beta_inv, 'the inverse channel ratio; 8 in the paper')
    if self.base_width % self.beta_inv:
      raise ValueError(f'config.model.base_width={self.base_width} must be divisible by '
                       f'config.model.beta_inv={self.beta_inv} (the fast pathway is '
                       f'base_width / beta_inv wide).')
    check_int('fusion_kernel', self.fusion_kernel, 'the lateral temporal kernel', odd=True)
    check_int('fusion_conv_channel_ratio', self.fusion_conv_channel_ratio,
                       'lateral width / fast width; 2 in the paper')
    self.pathway(fast=False, parent=None)  # Unbound, so ResNet3D's checks run at build time.

  @property
  def fast_width(self) -> int:
    return self.base_width // self.beta_inv

  @property
  def num_features(self) -> int:
    """Width of the pooled [slow, fast] features."""
    return (self.base_width + self.fast_width) * 8 * self.block_class.EXPANSION

  def pathway(self, fast: bool, **kwargs) -> Pathway:
    """The fast or slow trunk as a Pathway module (kwargs: name or parent)."""
    common = dict(num_classes=0, depth=self.depth, zero_init_residual=self.zero_init_residual,
                  dtype=self.dtype, param_dtype=self.param_dtype, **kwargs)
    if fast:
      return Pathway(base_width=self.fast_width, temporal_kernels=FAST_TEMPORAL_KERNELS,
                     stem_temporal_kernel=FAST_STEM_TEMPORAL_KERNEL, **common)
    return Pathway(base_width=self.base_width, temporal_kernels=SLOW_TEMPORAL_KERNELS,
                   stem_temporal_kernel=1, nonlocal_blocks=tuple(map(tuple, self.nonlocal_blocks)),
                   nonlocal_pool=tuple(self.nonlocal_pool), **common)

  @nn.compact
  def __call__(self, video: jax.Array, *, train: bool) -> jax.Array:
    inputs.check_video(video, 'SlowFast')
    if video.shape[1] % self.alpha:
      raise inputs.error(video, 'SlowFast', f'it needs a clip length divisible by '
                         f'config.model.alpha={self.alpha} (the slow pathway takes every '
                         f'alpha-th frame), got {video.shape[1]} frames; change '
                         f'config.dataset.num_frames or alpha')
    slow_net, fast_net = self.pathway(False, name='slow'), self.pathway(True, name='fast')
    slow, fast = video[:, ::self.alpha], video
    for part in range(resnet.NUM_STAGES + 1):
      slow = slow_net(slow, train=train, part=part)
      fast = fast_net(fast, train=train, part=part)
      if part < resnet.NUM_STAGES:
        slow = FuseFastToSlow(self.alpha, self.fusion_kernel, self.fusion_conv_channel_ratio,
                              dtype=self.dtype, param_dtype=self.param_dtype,
                              name=f'fuse_{part}')(slow, fast, train=train)
    features = jnp.concatenate([jnp.mean(slow, axis=(1, 2, 3)), jnp.mean(fast, axis=(1, 2, 3))],
                               axis=-1)
    return resnet.classifier_head(features, self.num_classes, self.dropout_rate, train,
                                  dtype=self.dtype, param_dtype=self.param_dtype)
