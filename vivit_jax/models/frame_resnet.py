"""`FrameResNet`: the base of the models built from a 2D ResNet on frames, with ResNet2D's fields
(depth, base_width, zero_init_residual, dropout_rate, dtypes). It runs the ResNet either as
ResNet2D submodules (`resnet2d`: fusion.py, two_stream.py) or as its own per-frame trunk
(`frame_maps`: recurrent.py, parameter paths stem_conv, stem_bn, stage_{1..4} of the model).
"""
import dataclasses

import jax

from vivit_jax.models import resnet
from vivit_jax.models.inputs import check_video


class FrameResNet(resnet._ResNet):  # pylint: disable=protected-access
  """ResNet2D's fields for models made of 2D ResNets on frames (module docstring)."""

  def resnet2d(self, num_classes: int, name: str) -> resnet.ResNet2D:
    """A ResNet2D submodule `name` with this model's ResNet fields and `num_classes`."""
    fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(resnet._ResNet)  # pylint: disable=protected-access
              if f.init and f.name not in ('parent', 'name')}
    return resnet.ResNet2D(**dict(fields, num_classes=num_classes), name=name)

  def frame_maps(self, video: jax.Array, train: bool,
                 num_stages: int = resnet.NUM_STAGES) -> list[jax.Array]:
    """video (B, T, H, W, C) -> the outputs of stages 1..num_stages per frame,
    (B, T, H_s, W_s, C_s) with H_s = H / 2^(s + 1) (rounded up) and C_s = base_width 2^(s - 1)
    (x 4 for bottlenecks). The trunk is this module's own stem and stages, the T frames folded
    into the batch (BatchNorm statistics over all B * T frames). Call inside a compact method."""
    check_video(video, type(self).__name__)
    b, t = video.shape[:2]
    x = self._stem(video.reshape((b * t,) + video.shape[2:]), train, None)
    maps = []
    for s, n in enumerate(self.stage_sizes[:num_stages]):
      x = self._stage(x, train, s, (None,) * n)
      maps.append(x.reshape((b, t) + x.shape[1:]))
    return maps
