"""Shared pytest fixtures.

The local data mirror defaults to ../shared/data next to the repository; the Hugging Face hub is
switched to offline mode so a missing file fails fast instead of retrying the network.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_MIRROR = Path(__file__).resolve().parents[1].parent / "shared" / "data"
_OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                "TOKENIZERS_PARALLELISM": "false"}
# Set at import too: datasets / huggingface_hub / transformers read these when first imported,
# which happens while test modules are collected, before any fixture runs.
for _k, _v in _OFFLINE_ENV.items():
    os.environ.setdefault(_k, _v)


@pytest.fixture(scope="session", autouse=True)
def _offline_data_env():
    """LIN_DATA_DIR -> the shared mirror (unless already set); HF hub offline."""
    with pytest.MonkeyPatch.context() as mp:
        if not os.environ.get("LIN_DATA_DIR"):
            mp.setenv("LIN_DATA_DIR", str(_MIRROR))
        for k, v in _OFFLINE_ENV.items():
            mp.setenv(k, v)
        yield


@pytest.fixture(scope="session")
def tiny_bpe_tokenizer():
    """A real byte-level BPE tokenizer (vocab ~600) trained offline on ~100 KB of WikiText-2 test.

    A ``transformers.PreTrainedTokenizerFast`` with ``<s>`` (BOS), ``</s>`` (EOS), ``<pad>``;
    it adds no special tokens on its own.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    src = Path(os.environ.get("LIN_DATA_DIR") or _MIRROR) / "wikitext-2-raw" / "wiki.test.raw"
    if not src.is_file():
        src = _MIRROR / "wikitext-2-raw" / "wiki.test.raw"
    text = src.read_text(encoding="utf-8")[:100_000]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=["<pad>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(text.splitlines(keepends=True), trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>")


@pytest.fixture(scope="module")
def one_torch_thread():
    """Many tiny forward passes: one torch thread avoids OpenMP stalls on a shared 2-core box."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def stories():
    """stories260K and its tokenizer, loaded once per test module."""
    from lin_utils.models import load_model

    return load_model("stories260K")


@pytest.fixture(scope="module")
def sp():
    """The SentencePiece processor of stories260K's tok512.model (the reference tokenizer)."""
    import sentencepiece
    from stories260k import TOK512

    return sentencepiece.SentencePieceProcessor(model_file=str(TOK512))


def pytest_collection_modifyitems(config, items):
    """Under `make mutate`, run a mutant's covering tests fastest first.

    mutmut runs them with ``-x`` in collection order, so one slow test early in the order makes
    every mutant that a fast test kills wait for it. The durations are mutmut's own measurements
    from its stats run (``mutants/mutmut-stats.json``, beside the copied ``tests/``).
    """
    mutant = os.environ.get("MUTANT_UNDER_TEST", "")
    stats = Path(__file__).resolve().parents[1] / "mutmut-stats.json"
    if "__mutmut_" not in mutant or not stats.is_file():
        return
    import json

    duration = json.loads(stats.read_text()).get("duration_by_test", {})
    items.sort(key=lambda item: duration.get(item.nodeid, float("inf")))
