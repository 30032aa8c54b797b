"""Training: mesh and sharding, train state, the one train step, optimizer, checkpoints, loop."""
