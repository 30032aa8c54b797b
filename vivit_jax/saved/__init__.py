"""What a run leaves on disk, read and written below every other layer: the config saved in
WORKDIR/config.json (`saved.config`) and Orbax parameter checkpoints (`saved.checkpoints`), used
by the training loop, the weight loaders (`weights.init_from`) and the tools."""
