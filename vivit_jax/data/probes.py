"""Batch transforms that probe what a trained model uses (`loop.evaluate(..., transform=)`)."""
import numpy as np


def repeat_middle_frame(batch: dict) -> dict:
  """batch['video'] (B, T, H, W, C) -> every frame replaced by frame T // 2 (and 'flow', if any,
  by zeros: a static clip does not move). A model of motion then scores near chance."""
  video = batch['video']
  middle = video[:, video.shape[1] // 2][:, None]
  out = dict(batch, video=np.repeat(middle, video.shape[1], axis=1))
  if 'flow' in batch:
    out['flow'] = np.zeros_like(batch['flow'])
  return out
