"""vivit_jax: video understanding in JAX/Flax on one sharded train step."""
