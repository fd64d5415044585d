"""Pretraining of small Mistral-architecture models on TinyStories, with or without an
inter-layer regularizer (the paper's Section 4).

- :mod:`.configs`: named model sizes, :func:`zoo_config`, :class:`TrainConfig` (and its key);
- :mod:`.tokenizer`: the byte-level BPE trained on the training stories only;
- :mod:`.packing`: stories packed into rows, the seeded row order, validation rows;
- :mod:`.regularizers`: cosine and MSE terms over consecutive block boundaries;
- :mod:`.checkpoints`: log-spaced checkpoints, resume states, atomic writes;
- :mod:`.metrics`: validation loss and :func:`bits_per_byte`;
- :mod:`.loop`: :func:`train`, the loop itself.

The model zoo built on this (names, cache, ``resolve``) is :mod:`lin_utils.zoo`.
"""
from .configs import SIZES, TrainConfig, count_parameters, zoo_config
from .checkpoints import list_checkpoints, log_spaced_steps
from .loop import TrainResult, lr_at, train
from .metrics import bits_per_byte, eval_loss
from .regularizers import cosine_regularizer, mse_regularizer, regularizer
from .tokenizer import TokenizerSpec, load_or_train_tokenizer, train_tokenizer, training_texts

__all__ = [
    "SIZES", "TrainConfig", "count_parameters", "zoo_config", "list_checkpoints",
    "log_spaced_steps", "TrainResult", "lr_at", "train", "bits_per_byte", "eval_loss",
    "cosine_regularizer", "mse_regularizer", "regularizer", "TokenizerSpec",
    "load_or_train_tokenizer", "train_tokenizer", "training_texts",
]
