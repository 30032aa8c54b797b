"""A PyTorch reference of torchvision's VideoResNet (r3d_18, mc3_18, r2plus1d_18), for the
equality tests of vivit_jax/weights/torchvision_video.py.

Written from a reading of torchvision/models/video/resnet.py (github.com/pytorch/vision): the same
module classes and names (BasicStem, R2Plus1dStem, Conv3DSimple, Conv3DNoTemporal, Conv2Plus1D,
BasicBlock, VideoResNet), so its state dict has torchvision's tensor names and shapes, with the
widths (torchvision's 64, 128, 256, 512; stem M 45) and blocks per stage as arguments so tests
can shrink it. Only the basic block is written (the three released models use it).

Why not torchvision itself: PyPI's torchvision wheel is a CUDA build that does not import against
the CPU torch of our environment (and breaks transformers' imports once installed), so the tests
cannot depend on it.
"""
from typing import Sequence

from torch import nn


class Conv3DSimple(nn.Conv3d):
  """A 3 x 3 x 3 conv; its shortcut is strided in time too."""

  def __init__(self, in_planes, out_planes, midplanes=None, stride=1):
    del midplanes
    super().__init__(in_planes, out_planes, (3, 3, 3), stride, 1, bias=False)

  @staticmethod
  def get_downsample_stride(stride):
    return stride, stride, stride


class Conv3DNoTemporal(nn.Conv3d):
  """A 1 x 3 x 3 conv (MC's top stages); T is kept, also by its shortcut."""

  def __init__(self, in_planes, out_planes, midplanes=None, stride=1):
    del midplanes
    super().__init__(in_planes, out_planes, (1, 3, 3), (1, stride, stride), (0, 1, 1),
                     bias=False)

  @staticmethod
  def get_downsample_stride(stride):
    return 1, stride, stride


class Conv2Plus1D(nn.Sequential):
  """1 x 3 x 3 conv to `midplanes` (.0), BN (.1), ReLU (.2), 3 x 1 x 1 conv (.3)."""

  def __init__(self, in_planes, out_planes, midplanes, stride=1):
    super().__init__(
        nn.Conv3d(in_planes, midplanes, (1, 3, 3), (1, stride, stride), (0, 1, 1), bias=False),
        nn.BatchNorm3d(midplanes), nn.ReLU(inplace=True),
        nn.Conv3d(midplanes, out_planes, (3, 1, 1), (stride, 1, 1), (1, 0, 0), bias=False))

  @staticmethod
  def get_downsample_stride(stride):
    return stride, stride, stride


class BasicStem(nn.Sequential):
  """3 x 7 x 7 conv, stride 1 x 2 x 2 (.0), BN (.1), ReLU."""

  def __init__(self, width=64):
    super().__init__(nn.Conv3d(3, width, (3, 7, 7), (1, 2, 2), (1, 3, 3), bias=False),
                     nn.BatchNorm3d(width), nn.ReLU(inplace=True))


class R2Plus1dStem(nn.Sequential):
  """1 x 7 x 7 conv to `mid` (.0), BN (.1), ReLU, 3 x 1 x 1 conv (.3), BN (.4), ReLU."""

  def __init__(self, width=64, mid=45):
    super().__init__(nn.Conv3d(3, mid, (1, 7, 7), (1, 2, 2), (0, 3, 3), bias=False),
                     nn.BatchNorm3d(mid), nn.ReLU(inplace=True),
                     nn.Conv3d(mid, width, (3, 1, 1), 1, (1, 0, 0), bias=False),
                     nn.BatchNorm3d(width), nn.ReLU(inplace=True))


class BasicBlock(nn.Module):
  """conv1 = (conv, BN, ReLU), conv2 = (conv, BN), + downsample(x) or x, ReLU. One M for both
  convs, from the block's input width (torchvision's `midplanes`)."""

  def __init__(self, inplanes, planes, conv_builder, stride=1, downsample=None):
    super().__init__()
    midplanes = (inplanes * planes * 27) // (inplanes * 9 + 3 * planes)
    self.conv1 = nn.Sequential(conv_builder(inplanes, planes, midplanes, stride),
                               nn.BatchNorm3d(planes), nn.ReLU(inplace=True))
    self.conv2 = nn.Sequential(conv_builder(planes, planes, midplanes), nn.BatchNorm3d(planes))
    self.relu = nn.ReLU(inplace=True)
    self.downsample = downsample

  def forward(self, x):
    shortcut = x if self.downsample is None else self.downsample(x)
    return self.relu(self.conv2(self.conv1(x)) + shortcut)


class VideoResNet(nn.Module):
  """stem, layer1..4 (stride 1, 2, 2, 2; a 1x1x1 conv + BN `downsample` where the shape
  changes), global average pool, fc. Input (B, 3, T, H, W) -> logits (B, num_classes)."""

  def __init__(self, conv_makers: Sequence[type], layers: Sequence[int], stem: nn.Module,
               widths: Sequence[int] = (64, 128, 256, 512), num_classes: int = 400):
    super().__init__()
    self.stem = stem
    inplanes = widths[0]
    for i, (conv_builder, planes, blocks) in enumerate(zip(conv_makers, widths, layers)):
      stride = 1 if i == 0 else 2
      downsample = None
      if stride != 1 or inplanes != planes:
        downsample = nn.Sequential(
            nn.Conv3d(inplanes, planes, 1, conv_builder.get_downsample_stride(stride),
                      bias=False), nn.BatchNorm3d(planes))
      stage = [BasicBlock(inplanes, planes, conv_builder, stride, downsample)]
      stage += [BasicBlock(planes, planes, conv_builder) for _ in range(1, blocks)]
      setattr(self, f'layer{i + 1}', nn.Sequential(*stage))
      inplanes = planes
    self.avgpool = nn.AdaptiveAvgPool3d(1)
    self.fc = nn.Linear(inplanes, num_classes)

  def forward(self, x):
    x = self.stem(x)
    for i in range(1, 5):
      x = getattr(self, f'layer{i}')(x)
    return self.fc(self.avgpool(x).flatten(1))


def r3d(widths=(64, 128, 256, 512), layers=(2, 2, 2, 2), num_classes=400) -> VideoResNet:
  """torchvision's r3d_18 at these widths and blocks per stage."""
  return VideoResNet([Conv3DSimple] * 4, layers, BasicStem(widths[0]), widths, num_classes)


def mc3(widths=(64, 128, 256, 512), layers=(2, 2, 2, 2), num_classes=400) -> VideoResNet:
  """torchvision's mc3_18 at these widths and blocks per stage."""
  return VideoResNet([Conv3DSimple] + [Conv3DNoTemporal] * 3, layers, BasicStem(widths[0]),
                     widths, num_classes)


def r2plus1d(widths=(64, 128, 256, 512), layers=(2, 2, 2, 2), num_classes=400,
             stem_mid=45) -> VideoResNet:
  """torchvision's r2plus1d_18 at these widths and blocks per stage (stem M `stem_mid`)."""
  return VideoResNet([Conv2Plus1D] * 4, layers, R2Plus1dStem(widths[0], stem_mid), widths,
                     num_classes)
