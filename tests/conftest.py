"""Test setup: 8 simulated CPU devices (set before JAX initialises), TF kept off accelerators."""
import os

os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=8')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
os.environ.setdefault('JAX_PLATFORMS', 'cpu')

import jax  # noqa: E402  (must follow the flags above)

jax.config.update('jax_num_cpu_devices', 8)
