"""Video data: the built-in `synthetic_motion` TFDS dataset and the tf.data input pipeline."""
from vivit_jax.data.pipeline import (OPTIONAL_KEYS, dataset_info, get_builder,
                                     make_eval_iterator, make_train_iterator)

__all__ = ['OPTIONAL_KEYS', 'dataset_info', 'get_builder', 'make_eval_iterator',
           'make_train_iterator']
