"""Getting weights in: Hugging Face checkpoints (`hf.load_pretrained`)."""
