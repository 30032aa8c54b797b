"""Accelerator-only failures caught on this CPU: every paper preset's real-size train step,
on abstract inputs, lowered for GPU ('cuda') and TPU ('tpu') with the kernels those platforms
run. Transformers must lower a flash kernel (cuDNN's custom call; Pallas/Mosaic's) and no
N x N attention-weight tensor; a multi-device mesh runs the Pallas kernel per shard."""
import collections
import math
import re

import jax
import pytest

from configs import speed_benchmark
from tests.helpers import tiny_config
from tools.benchmarks.compile_only import aot
from vivit_jax.models import attention

BATCH = 8  # Activations have leading dimensions whose product is a multiple of the batch.
FLASH_CALLS = {'cuda': ('__cudnn$fmhaSoftmax', '__cudnn$fmhaSoftmaxBackward'),
               'tpu': ('tpu_custom_call',)}
_TENSOR = re.compile(r'tensor<((?:\d+x)+)(?:f32|bf16|f16)>')


def custom_calls(text: str) -> collections.Counter:
  return collections.Counter(re.findall(r'custom_call @([\w.$-]+)', text))


def attention_weights(text: str) -> set[str]:
  """Shapes of activations (leading dimensions a multiple of BATCH: the batch, times frames or
  positions for factorised attention) ending in (n, n) with n >= 128 tokens, other than a Pallas
  kernel's own (128, 256 or 512)-token blocks: materialised attention weights. (No parameter of
  the presets is square with leading dimensions a multiple of 8.)"""
  found = set()
  for dims in _TENSOR.findall(text):
    shape = [int(d) for d in dims.rstrip('x').split('x')]
    if (len(shape) >= 3 and shape[-1] == shape[-2] >= 128 and math.prod(shape[:-2]) % BATCH == 0
        and shape[-1] not in attention.SPLASH_BLOCKS):
      found.add('x'.join(map(str, shape)))
  return found


def _lowered_text(config, platforms, devices=None, batch=BATCH):
  with attention.assume_cudnn():
    lowered = aot.lower_train_step(config, batch, devices or jax.devices('cpu')[0],
                                   lowering_platforms=tuple(platforms))
  return lowered.as_text()


TRANSFORMERS = [n for n in speed_benchmark.MODELS
                if speed_benchmark.load_preset(n).model.name in speed_benchmark.TRANSFORMERS]
CNNS = [n for n in speed_benchmark.MODELS if n not in TRANSFORMERS]


@pytest.mark.slow
@pytest.mark.parametrize('platform', ['cuda', 'tpu'])
@pytest.mark.parametrize('name', TRANSFORMERS)
def test_paper_transformer_lowers_with_flash_attention(name, platform):
  text = _lowered_text(speed_benchmark.load_preset(name), [platform])
  calls = custom_calls(text)
  assert all(calls[call] >= 1 for call in FLASH_CALLS[platform]), dict(calls)
  assert not attention_weights(text)


@pytest.mark.slow
@pytest.mark.parametrize('name', CNNS)
def test_paper_cnn_lowers_for_gpu_and_tpu(name):
  """One lowering for both platforms (no attention: the same trace serves both)."""
  text = _lowered_text(speed_benchmark.load_preset(name), ['cuda', 'tpu'])
  assert 'stablehlo.convolution' in text and not attention_weights(text)


def test_attention_weights_detector_sees_xla_attention():
  """The check above can fail: plain XLA attention's weights are found."""
  config = speed_benchmark.load_preset('vivit2')
  config.model.attention_impl = 'xla'
  text = _lowered_text(config, ['tpu'])
  assert f'{BATCH * 16}x12x1x197x197' in attention_weights(text)  # 16 frames of 197 tokens.
  assert not custom_calls(text)['tpu_custom_call']


@pytest.mark.parametrize('platform', ['cuda', 'tpu'])
def test_sharded_tiny_vivit_lowers_flash_attention(platform):
  """A bfloat16 ViViT with 128 tokens on a (data 2, model 2) mesh of CPU devices, lowered for
  the accelerator: the kernel runs on each batch / head shard."""
  config = tiny_config()
  config.mesh.update(data=2, fsdp=1, model=2)
  config.dataset.update(num_frames=8, crop_size=32)
  config.model.update(dtype='bfloat16', attention_impl='auto', patch_size=(2, 4, 4),
                      hidden_size=64, num_heads=2, mlp_dim=128, num_layers=1)
  text = _lowered_text(config, [platform], devices=jax.devices('cpu')[:4], batch=4)
  calls = custom_calls(text)
  assert all(calls[call] >= 1 for call in FLASH_CALLS[platform]), dict(calls)
  assert 'sdy.manual_computation' in text  # shard_map: the kernel sees one shard.
