"""A byte-level BPE trained offline on TinyStories *training* text, and the training data's identity.

:func:`training_texts` is the only text source of the tokenizer and of the training token
stream: the stories of :func:`lin_utils.data.load_stories` ``("tinystories", "train")`` (the
1,000-story V1 train head, then the 31,224 stories of ``tinystories-more``). The validation
head is never read here (``tests/test_train.py`` checks that no story of this iterator occurs in
it). :func:`load_or_train_tokenizer` caches the trained tokenizer under
``$LIN_CACHE/tokenizers/<spec key>/`` as a ``PreTrainedTokenizerFast`` directory.

Special tokens: ``<pad>`` = 0, ``<s>`` (BOS) = 1, ``</s>`` (EOS) = 2. Like Llama and Mistral
tokenizers, ``tokenizer(text)`` prepends BOS; ``add_special_tokens=False`` gives the bare ids.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from ..data import load_stories
from ..errors import LinUtilsError
from ..paths import cache_dir as default_cache

__all__ = ["TokenizerSpec", "train_tokenizer", "training_texts", "heldout_texts", "load_or_train_tokenizer",
           "tokenizer_sha256", "data_identity", "sees_heldout", "TINYSTORIES_TRAIN_STORIES", "HELDOUT_STORIES",
           "TRAINABLE_STORIES"]

#: number of training stories in the local mirror (the zoo's keys assume exactly this data)
TINYSTORIES_TRAIN_STORIES = 32_224
#: the last stories of the training corpus, held out: never in a tokenizer's or a training
#: stream's text, so that a recipe can be chosen on training-distribution text that no model saw
#: (:func:`heldout_texts`) without touching the validation head that the pages report
HELDOUT_STORIES = 500
#: the training stories a model may train on and still be scored on the held-out tail: a config
#: whose ``data_stories`` (and ``tokenizer_stories``) is at most this never saw the tail. ``None``
#: (every story, tail included) is what the zoo trained on before the tail was held out, and keeps
#: its keys: those models' committed results stay valid until they are retrained.
TRAINABLE_STORIES = TINYSTORIES_TRAIN_STORIES - HELDOUT_STORIES
TOKENIZER_CODE_VERSION = 1
SPECIAL_TOKENS = ("<pad>", "<s>", "</s>")


def _train_stories() -> list[str]:
    stories = load_stories("tinystories", "train")
    if len(stories) != TINYSTORIES_TRAIN_STORIES:
        raise LinUtilsError(
            f"the TinyStories training corpus has {len(stories):,} stories, not the "
            f"{TINYSTORIES_TRAIN_STORIES:,} of the local mirror that the zoo is keyed on; "
            f"set LIN_DATA_DIR to the project's data folder")
    return stories


def training_texts(n_stories: int | None = None) -> Iterator[str]:
    """The TinyStories training stories, in corpus order; the first ``n_stories`` (None = all of
    them, the held-out tail included: see :data:`TRAINABLE_STORIES`).

    Raises :class:`~lin_utils.errors.LinUtilsError` when the corpus is not the local mirror's
    (its story count differs), since the zoo's keys name that exact data.
    """
    stories = _train_stories()
    return iter(stories if n_stories is None else stories[:n_stories])


def sees_heldout(n_stories: int | None) -> bool:
    """Whether a slice of the first ``n_stories`` training stories (None: all) reaches the tail."""
    return n_stories is None or n_stories > TRAINABLE_STORIES


def heldout_texts() -> list[str]:
    """The last :data:`HELDOUT_STORIES` training stories, never trained on (recipe selection)."""
    return _train_stories()[-HELDOUT_STORIES:]


def data_identity(n_stories: int | None) -> dict:
    """What names the training stream: corpus, split, mirror story count and the slice used."""
    return {"corpus": "tinystories", "split": "train", "source": "lin-mirror",
            "mirror_stories": TINYSTORIES_TRAIN_STORIES, "n_stories": n_stories,
            "format": "<s> story </s> packed"}


@dataclass(frozen=True)
class TokenizerSpec:
    """A byte-level BPE of ``vocab_size`` trained on the first ``n_stories`` training stories."""

    vocab_size: int
    n_stories: int | None = None

    def identity(self) -> dict:
        return {"kind": "byte-level-bpe", "vocab_size": self.vocab_size,
                "data": data_identity(self.n_stories), "version": TOKENIZER_CODE_VERSION}

    def key(self) -> str:
        text = json.dumps(self.identity(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def train_tokenizer(texts: Iterable[str], vocab_size: int, *, min_frequency: int = 2):
    """Train a byte-level BPE on ``texts`` and return it as a ``PreTrainedTokenizerFast``.

    The 256 byte symbols are always in the vocabulary, so any text round-trips exactly.
    ``vocab_size`` counts them, the three special tokens and the merges.
    """
    if vocab_size < 256 + len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size must be >= {256 + len(SPECIAL_TOKENS)} (bytes + specials), "
                         f"got {vocab_size}")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                  special_tokens=list(SPECIAL_TOKENS), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    bos = SPECIAL_TOKENS[1]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tok.token_to_id(bos))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>",
                                   eos_token="</s>", model_max_length=1_000_000)


def tokenizer_sha256(tokenizer) -> str:
    """sha256 of the tokenizer's serialized model (vocabulary, merges, normalizers): its identity."""
    return hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode()).hexdigest()


def load_or_train_tokenizer(spec: TokenizerSpec, cache_dir: Path | None = None):
    """The tokenizer of ``spec`` from ``<cache>/tokenizers/<key>/``, trained there if missing.

    The folder is written atomically (temporary folder, then ``os.replace``).
    """
    root = Path(cache_dir or default_cache()) / "tokenizers"
    final = root / spec.key()
    if not (final / "tokenizer.json").is_file():
        tok = train_tokenizer(training_texts(spec.n_stories), spec.vocab_size)
        root.mkdir(parents=True, exist_ok=True)
        tmp = root / f".tmp-{spec.key()}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tok.save_pretrained(tmp)
        (tmp / "lin_tokenizer.json").write_text(json.dumps(
            {**spec.identity(), "sha256": tokenizer_sha256(tok)}, indent=1))
        try:
            os.replace(tmp, final)
        except OSError:  # another process finished first
            shutil.rmtree(tmp, ignore_errors=True)
    return PreTrainedTokenizerFast.from_pretrained(str(final))
