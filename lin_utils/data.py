"""Corpora and evaluation sets: local mirror first (``$LIN_DATA_DIR``), Hugging Face hub second.

The local mirror has the layout of the project's shared data folder; every subfolder carries a
``SOURCE.md`` describing provenance and format. Loaders here return data in the mirror's original
formats. When a file is absent locally they try ``datasets.load_dataset`` and convert hub rows to
that same format. When both fail they raise :class:`~lin_utils.errors.DataNotFoundError`, naming
the local path and the hub id.

Hub access honours ``HF_HUB_OFFLINE=1`` / ``HF_DATASETS_OFFLINE=1`` *at call time* (the libraries
only read them at import): only the local HF cache is consulted, and a miss fails at once.

Token batching: :func:`tokenize_text` turns text into a 1-D id tensor; :func:`chunk_tokens` cuts
it into non-overlapping fixed-length rows, optionally each starting with BOS, with the last partial
row right-padded and masked.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import huggingface_hub.constants as hcst
import torch

from lin_utils.errors import DataNotFoundError, LinUtilsError, one_line

__all__ = [
    "TEXT_SPLITS", "EVAL_SPLITS", "TokenChunks", "data_dir", "load_text", "load_stories",
    "iter_stories", "load_eval", "tokenize_text", "chunk_tokens", "text_chunks",
]

ENV_VAR = "LIN_DATA_DIR"
_TRUE = {"1", "true", "yes", "on"}


def data_dir() -> Path | None:
    """The local mirror root from ``$LIN_DATA_DIR``, or ``None`` when the variable is unset/empty."""
    root = os.environ.get(ENV_VAR, "").strip()
    return Path(root).expanduser() if root else None


# ----------------------------------------------------------------------------------------------
# generic "local first, hub second" fetch
# ----------------------------------------------------------------------------------------------

def _hub_offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in _TRUE
               for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


@contextlib.contextmanager
def _offline_if_requested():
    """Apply the offline env vars now, even if ``datasets``/``huggingface_hub`` were imported
    before they were set (both libraries snapshot them at import)."""
    if not _hub_offline():
        yield
        return
    import datasets.config as dcfg  # heavy and optional: only when a data set comes from the hub
    saved = (hcst.HF_HUB_OFFLINE, dcfg.HF_HUB_OFFLINE, dcfg.HF_DATASETS_OFFLINE)
    hcst.HF_HUB_OFFLINE = dcfg.HF_HUB_OFFLINE = dcfg.HF_DATASETS_OFFLINE = True
    try:
        yield
    finally:
        hcst.HF_HUB_OFFLINE, dcfg.HF_HUB_OFFLINE, dcfg.HF_DATASETS_OFFLINE = saved


def _hub_dataset(path: str, name: str | None = None, **kwargs: Any):
    import datasets  # heavy and optional: only when a data set comes from the hub

    with _offline_if_requested():
        return datasets.load_dataset(path, name, **kwargs)


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {one_line(exc, 160)}" if str(exc).strip() else type(exc).__name__


def _fetch(what: str, rel: Sequence[str], read_local: Callable[..., Any],
           hub_id: str, read_hub: Callable[[], Any]) -> Any:
    """Read ``rel`` (paths relative to the mirror root) with ``read_local(*paths)``; if any is
    missing, call ``read_hub()``; if that fails too, raise DataNotFoundError naming both."""
    root = data_dir()
    if root is None:
        local_note = (f"{ENV_VAR} is not set, so no local mirror was searched "
                      f"(expected ${ENV_VAR}/{rel[0]})")
    else:
        paths = [root / r for r in rel]
        missing = [p for p in paths if not p.is_file()]
        if not missing:
            return read_local(*paths)
        local_note = (f"local file{'s' if len(missing) > 1 else ''} "
                      + ", ".join(str(p) for p in missing) + " not found")
    try:
        return read_hub()
    except Exception as exc:  # any hub failure (offline, network, auth, script) -> one error type
        hub_note = f"hub dataset '{hub_id}' failed ({_short(exc)})"
    raise DataNotFoundError(f"{what}: {local_note}; {hub_note}.")


def _check(kind: str, value: str | None, choices: Sequence[str], of: str = "") -> None:
    if value not in choices:
        where = f" for {of!r}" if of else ""
        raise ValueError(f"unknown {kind} {value!r}{where}; choose one of: {', '.join(choices)}")


def _read_jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _read_text(path: Path) -> str:
    with open(path, encoding="utf-8", newline="") as fh:  # keep line endings byte-exact
        return fh.read()


# ----------------------------------------------------------------------------------------------
# text corpora
# ----------------------------------------------------------------------------------------------

#: valid ``split`` values for each :func:`load_text` name (aliases included)
TEXT_SPLITS: dict[str, tuple[str, ...]] = {
    "wikitext-2": ("test", "valid", "validation", "train"),
    "tinystories": ("validation", "valid", "train"),
}
_WIKI_FILE = {"test": "test", "valid": "valid", "validation": "valid", "train": "train"}
_WIKI_HUB = {"test": "test", "valid": "validation", "validation": "validation", "train": "train"}
_TS_TRAIN_2MIB = "tinystories-more/tinystories_train_head_2MiB.txt"
_TS_TRAIN_HEAD_N = 1000  # stories #0-999 of the 2 MiB dump == tinystories_train_head.txt
_TS_VALID_HEAD = "tinystories/tinystories_validation_head.txt"
_TS_MORE = "tinystories-more/new_distinct_stories.jsonl"
# Paragraph openers that start a new story in the validation head (see _split_validation_head).
_STORY_OPENERS = re.compile(r"(?:Once upon a time|Once there (?:was|were|lived)|Once,)")


def load_text(name: str, split: str) -> str:
    """Raw text of a corpus split.

    - ``"wikitext-2"`` (``test``, ``valid``/``validation``, ``train``): the byte-exact
      ``wiki.{split}.raw`` of wikitext-2-raw-v1 (title lines `` = T = ``, blank lines ``" \\n"``).
      From the hub, rows are joined back into that exact file format (blank row -> ``" \\n"``);
      the usual HF perplexity text ``"\\n\\n".join(rows)`` is a different string. The mirror has no
      train split; ``train`` needs the hub.
    - ``"tinystories"``: ``validation`` is ``tinystories/tinystories_validation_head.txt``
      verbatim, a clean held-out head of the V1 validation split (each story stripped and followed
      by one blank line). ``train`` is every story of :func:`load_stories` (the 1,000 stories of
      the V1 train head, then the 31,224 deduplicated stories of ``tinystories-more/``) written
      in that same format: ``story.strip() + "\\n\\n"`` each. Story bounds are not
      recoverable from this text (stories have blank lines inside); use :func:`load_stories`
      when they matter.
    - a path to a local ``.txt`` or ``.raw`` file: its text as UTF-8 (``split`` is ignored), so
      any corpus of the user's own can be scored.
    """
    if isinstance(name, (str, os.PathLike)) and Path(name).suffix in (".txt", ".raw"):
        path = Path(name).expanduser()
        if not path.is_file():
            raise DataNotFoundError(f"text file {path} not found")
        try:
            text = _read_text(path)
        except UnicodeDecodeError as e:
            raise LinUtilsError(f"text file {path} is not UTF-8 text (byte {e.start} is {e.object[e.start]:#04x}); "
                                "is it a binary file?") from None
        if "\x00" in text:
            raise LinUtilsError(f"text file {path} holds NUL bytes; is it a binary file?")
        if not text.strip():
            raise LinUtilsError(f"text file {path} is empty")
        return text
    _check("text corpus name", name, tuple(TEXT_SPLITS))
    _check("split", split, TEXT_SPLITS[name], of=name)
    if name == "wikitext-2":
        hub_split = _WIKI_HUB[split]

        def hub() -> str:
            rows = _hub_dataset("wikitext", "wikitext-2-raw-v1", split=hub_split)["text"]
            return "".join(r if r else " \n" for r in rows)

        return _fetch(f"wikitext-2 {split}", [f"wikitext-2-raw/wiki.{_WIKI_FILE[split]}.raw"],
                      _read_text, "wikitext (wikitext-2-raw-v1)", hub)
    if split in ("validation", "valid"):
        return _fetch("tinystories validation", [_TS_VALID_HEAD], _read_text,
                      "roneneldan/TinyStories",
                      lambda: _join_stories(_hub_dataset("roneneldan/TinyStories",
                                                         split="validation")["text"]))
    return _join_stories(load_stories("tinystories", "train"))


def _join_stories(stories: Sequence[str]) -> str:
    return "".join(s.strip() + "\n\n" for s in stories)


def _split_endoftext(text: str, limit: int) -> list[str]:
    # "<|endoftext|>"-separated dump; strip the newlines around separators (jsonl convention).
    return [s.strip("\n") for s in text.split("<|endoftext|>")[:limit]]


def _split_validation_head(text: str) -> list[str]:
    # Stories and paragraphs are both separated by one blank line here, so the split is a
    # heuristic: a paragraph opening with a story opener ("Once upon a time", ...) starts a new
    # story. Lossless ("\n\n".join(result) + "\n\n" == text) but approximate: some stories that
    # open otherwise are merged into their predecessor.
    stories: list[list[str]] = []
    for para in text.rstrip("\n").split("\n\n"):
        if not stories or _STORY_OPENERS.match(para):
            stories.append([para])
        else:
            stories[-1].append(para)
    return ["\n\n".join(s) for s in stories]


@functools.lru_cache(maxsize=2)
def _read_local_train_stories(dump: Path, more: Path) -> tuple[str, ...]:
    stories = _split_endoftext(_read_text(dump), _TS_TRAIN_HEAD_N)
    stories += [row["text"] for row in _read_jsonl(more)]
    return tuple(stories)


def load_stories(name: str = "tinystories", split: str = "train") -> list[str]:
    """Individual TinyStories stories.

    ``train``: the first 1,000 V1 train stories, then the ``text`` field of every row of
    ``tinystories-more/new_distinct_stories.jsonl`` (31,224; all distinct from each other and from
    the validation head), as stored. The first 1,000 are the stories of
    ``tinystories/tinystories_train_head.txt`` but are read from
    ``tinystories-more/tinystories_train_head_2MiB.txt``, whose ``<|endoftext|>`` separators give
    exact story bounds (the head file separates stories and some paragraphs alike by one
    ``"\n"``) and which has no parquet mojibake (``â€™``); they are cut the way the jsonl was. ``validation``: the
    validation head segmented by a heuristic (a paragraph opening "Once upon a time", "Once there
    was", ... starts a story), so it is approximate (~780 segments). Hub fallback: the ``text``
    column of ``roneneldan/TinyStories``.
    """
    _check("story corpus name", name, ("tinystories",))
    _check("split", split, TEXT_SPLITS["tinystories"], of="tinystories")
    hub_split = "train" if split == "train" else "validation"
    hub = lambda: list(_hub_dataset("roneneldan/TinyStories", split=hub_split)["text"])  # noqa: E731
    if split == "train":
        return _fetch("tinystories train", [_TS_TRAIN_2MIB, _TS_MORE],
                      lambda a, b: list(_read_local_train_stories(a, b)),
                      "roneneldan/TinyStories", hub)
    return _fetch("tinystories validation", [_TS_VALID_HEAD],
                  lambda p: _split_validation_head(_read_text(p)), "roneneldan/TinyStories", hub)


def iter_stories(split: str = "train") -> Iterator[str]:
    """Iterate over :func:`load_stories` ``("tinystories", split)``."""
    yield from load_stories("tinystories", split)


# ----------------------------------------------------------------------------------------------
# evaluation sets
# ----------------------------------------------------------------------------------------------

_ARC_SPLITS = {"train": ("Train", "train"), "dev": ("Dev", "validation"),
               "validation": ("Dev", "validation"), "test": ("Test", "test")}
_SG_DIRS = {"boolq": "BoolQ", "cb": "CB", "copa": "COPA", "multirc": "MultiRC",
            "record": "ReCoRD", "rte": "RTE", "wic": "WiC", "wsc": "WSC"}
_SG_SPLITS = {"validation": "val", "val": "val", "train32": "fewglue_train32",
              "fewglue": "fewglue_train32"}
_TWO_WAY_VAL = {"validation": "validation", "val": "validation", "dev": "validation"}

#: valid ``split`` values per :func:`load_eval` name (aliases included); the first is the default
EVAL_SPLITS: dict[str, tuple[str, ...]] = {
    "arc-easy": ("test", "train", "dev", "validation"),
    "arc-challenge": ("test", "train", "dev", "validation"),
    **{t: ("validation", "val", "train32", "fewglue") for t in _SG_DIRS if t != "record"},
    "record": ("train32", "fewglue"),
    "xstorycloze-en": ("eval", "train"),
    "hh-rlhf-helpful": ("test", "train"),
    "piqa": ("validation", "dev", "train"),
    "winogrande": ("validation", "dev"),
}


def load_eval(name: str, split: str | None = None) -> list[dict]:
    """Records of an evaluation set, as the original JSON objects (one dict per line).

    - ``arc-easy`` / ``arc-challenge`` (``test`` default, ``train``, ``dev``=``validation``):
      ``{"id", "question": {"stem", "choices": [{"text", "label"}, ...]}, "answerKey"}``.
    - SuperGLUE ``boolq cb copa multirc rte wic wsc`` (``validation``=``val`` default: official
      val.jsonl; ``train32``=``fewglue``: the FewGLUE 32 labelled train examples) and ``record``
      (``train32`` only). Labels are as in the files: val uses the strings ``"true"``/``"false"``
      where FewGLUE uses booleans; CB/RTE use label names; COPA an int. MultiRC rows are passages
      with nested questions and answers.
    - ``xstorycloze-en`` (``eval`` default, 1511; ``train``, 360): ``story_id,
      input_sentence_1..4, sentence_quiz1, sentence_quiz2, answer_right_ending`` (1 or 2).
    - ``hh-rlhf-helpful`` (``test`` default, 2354; ``train`` hub only): ``{"chosen", "rejected"}``.
    - ``piqa`` (``validation``=``dev``, 1838): ``{"id", "goal", "sol1", "sol2", "label"}`` with
      ``label`` (int 0/1) merged in from ``dev-labels.lst``.
    - ``winogrande`` (``validation``=``dev``, 1267): ``{"qID", "sentence", "option1", "option2",
      "answer", "label"}`` with ``label`` (int 1/2) merged in from ``dev-labels.lst``.

    These are the mirror's layouts. The SuperGLUE hub fallback is converted to them
    (:func:`superglue_rows_from_hub`: label values, MultiRC regrouped by paragraph), so the
    fine-tuning tasks read either source. For ARC (``question`` a string, ``choices = {"text":
    [...], "label": [...]}``) the hub fallback returns the hub's rows as they are; the
    benchmarks do not go through here but through lm-eval
    (:mod:`lin_utils.evaluate.harness`), whose task ``process_docs`` convert the mirror's rows to
    the hub's layout. FewGLUE subsets have no hub equivalent.
    """
    _check("eval set name", name, tuple(EVAL_SPLITS))
    split = EVAL_SPLITS[name][0] if split is None else split
    _check("split", split, EVAL_SPLITS[name], of=name)
    what = f"{name} {split}"

    if name.startswith("arc-"):
        cfg = "ARC-Easy" if name == "arc-easy" else "ARC-Challenge"
        local, hub_split = _ARC_SPLITS[split]
        return _fetch(what, [f"{name}/{cfg}-{local}.jsonl"], _read_jsonl,
                      f"allenai/ai2_arc ({cfg})",
                      lambda: [dict(r) for r in
                               _hub_dataset("allenai/ai2_arc", cfg, split=hub_split)])
    if name in _SG_DIRS:
        fname = _SG_SPLITS[split]
        return _fetch(what, [f"superglue/{_SG_DIRS[name]}/{fname}.jsonl"], _read_jsonl,
                      f"aps/super_glue ({name})", lambda: _superglue_hub_rows(name, fname))
    if name == "xstorycloze-en":
        return _fetch(what, [f"xstorycloze-en/en_{split}.jsonl"], _read_jsonl,
                      "juletxara/xstory_cloze (en)",
                      lambda: [dict(r) for r in
                               _hub_dataset("juletxara/xstory_cloze", "en", split=split)])
    if name == "hh-rlhf-helpful":
        return _fetch(what, [f"hh-rlhf-helpful-base/{split}.jsonl.gz"], _read_jsonl,
                      "Anthropic/hh-rlhf (data_dir=helpful-base)",
                      lambda: [dict(r) for r in _hub_dataset(
                          "Anthropic/hh-rlhf", data_dir="helpful-base", split=split)])
    # piqa / winogrande: jsonl + a parallel labels file
    fsplit = "dev" if split in _TWO_WAY_VAL else split
    hub_split = _TWO_WAY_VAL.get(split, split)
    if name == "piqa":
        return _fetch(what, [f"piqa/{fsplit}.jsonl", f"piqa/{fsplit}-labels.lst"],
                      _with_labels, "ybisk/piqa",
                      lambda: [dict(r) for r in _hub_dataset("ybisk/piqa", split=hub_split)])
    return _fetch(what, [f"winogrande/{fsplit}.jsonl", f"winogrande/{fsplit}-labels.lst"],
                  _with_labels, "allenai/winogrande (winogrande_xl)",
                  lambda: [{**r, "label": int(r["answer"])} for r in _hub_dataset(
                      "allenai/winogrande", "winogrande_xl", split=hub_split)])


def _with_labels(jsonl: Path, labels: Path) -> list[dict]:
    rows = _read_jsonl(jsonl)
    labs = [int(x) for x in _read_text(labels).split()]
    if len(labs) != len(rows):
        raise ValueError(f"{labels} has {len(labs)} labels for {len(rows)} rows in {jsonl}")
    return [{**r, "label": y} for r, y in zip(rows, labs)]


def _superglue_hub_rows(task: str, fname: str) -> list[dict]:
    if fname != "val":
        raise LookupError("the FewGLUE 32-example subsets are not an aps/super_glue split")
    ds = _hub_dataset("aps/super_glue", task, split="validation")
    label = ds.features.get("label")
    return superglue_rows_from_hub(task, [dict(r) for r in ds], getattr(label, "names", None))


def superglue_rows_from_hub(task: str, rows: list[dict], label_names: Sequence[str] | None) -> list[dict]:
    """``aps/super_glue`` validation rows in the mirror's ``val.jsonl`` layout.

    Integer ``ClassLabel`` labels become the mirror's values: ``"true"``/``"false"`` for the
    boolean tasks, the class name for CB and RTE; COPA keeps its integer. MultiRC's one row per
    (paragraph, question, answer) is regrouped into one row per paragraph,
    ``{"idx", "passage": {"text", "questions": [{"question", "idx", "answers": [{"text", "idx",
    "label"}]}]}}`` with integer answer labels, in first-seen order.
    """
    if task == "multirc":
        passages: dict[int, dict] = {}
        for r in rows:
            i = r["idx"]
            p = passages.setdefault(i["paragraph"], {"idx": i["paragraph"],
                                                     "passage": {"text": r["paragraph"], "questions": []}})
            questions = p["passage"]["questions"]
            if not questions or questions[-1]["idx"] != i["question"]:
                questions.append({"question": r["question"], "idx": i["question"], "answers": []})
            questions[-1]["answers"].append({"text": r["answer"], "idx": i["answer"], "label": int(r["label"])})
        return list(passages.values())
    if task == "copa" or not label_names or "label" not in (rows[0] if rows else {}):
        return rows
    mirror = {"False": "false", "True": "true"}
    return [{**r, "label": mirror.get(label_names[r["label"]], label_names[r["label"]])
             if r["label"] >= 0 else None} for r in rows]


# ----------------------------------------------------------------------------------------------
# tokens
# ----------------------------------------------------------------------------------------------

def tokenize_text(text: str, tokenizer, *, max_chars_per_call: int = 4_000_000) -> torch.Tensor:
    """Token ids of ``text`` without special tokens: LongTensor of shape ``(n_tokens,)``.

    Text up to ``max_chars_per_call`` characters (WikiText-2 test is 1.3M) is tokenized in one
    call, so ids are exactly those of ``tokenizer(text)`` -- the convention behind published
    perplexities. Longer text is cut after a newline into pieces of about that size and
    batch-tokenized; tokens can then differ at the few cut points (e.g. SentencePiece adds a
    prefix space at each piece start). The "sequence longer than model_max_length" warning is
    suppressed: chunking into model-sized rows is :func:`chunk_tokens`' job.
    """
    if max_chars_per_call < 1:
        raise ValueError(f"max_chars_per_call must be >= 1, got {max_chars_per_call}")
    pieces, start = [], 0
    while start < len(text):
        cut = text.find("\n", start + max_chars_per_call - 1)
        end = len(text) if cut == -1 else cut + 1
        pieces.append(text[start:end])
        start = end
    if not pieces:
        return torch.zeros(0, dtype=torch.long)
    ids = tokenizer(pieces, add_special_tokens=False, verbose=False)["input_ids"]
    return torch.tensor([t for row in ids for t in row], dtype=torch.long)


@dataclass
class TokenChunks:
    """Fixed-length rows of token ids.

    ``input_ids`` and ``attention_mask``: LongTensor ``(N, seq_len)``. Mask 1 marks real tokens
    (BOS included), 0 marks right padding, which only the last row can have. ``has_bos``: whether
    every row starts with BOS at position 0.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    has_bos: bool = False

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def seq_len(self) -> int:
        return int(self.input_ids.shape[1])

    @property
    def n_tokens(self) -> int:
        """Number of real (mask 1) tokens, BOS included."""
        return int(self.attention_mask.sum())

    def n_batches(self, batch_size: int) -> int:
        """How many batches :meth:`batches` yields (for progress bars)."""
        return -(-len(self) // batch_size)

    def batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(input_ids, attention_mask)`` views, each ``(<=batch_size, seq_len)``, in order."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        for i in range(0, len(self), batch_size):
            yield self.input_ids[i:i + batch_size], self.attention_mask[i:i + batch_size]


def chunk_tokens(ids: torch.Tensor, seq_len: int, *, max_tokens: int | None = None,
                 bos_id: int | None = None, pad_id: int = 0) -> TokenChunks:
    """Cut 1-D ``ids`` ``(n,)`` into non-overlapping rows ``(N, seq_len)``.

    With ``bos_id`` every row is ``[BOS] + seq_len-1`` consecutive text tokens; without it, rows
    are ``seq_len`` text tokens. Text tokens are used in order, each exactly once. The last row
    may be partial: right-padded with ``pad_id`` and mask 0. ``max_tokens`` caps the number of
    real tokens (BOS counted); a final row that would hold only BOS is dropped, so the total can
    fall short of the cap by one.
    """
    if seq_len < (2 if bos_id is not None else 1):
        need = "2 when bos_id is given" if bos_id is not None else "1"
        raise ValueError(f"seq_len must be >= {need}, got {seq_len}")
    if max_tokens is not None and max_tokens <= 0:
        raise ValueError(f"max_tokens must be > 0, got {max_tokens}")
    ids = torch.as_tensor(ids, dtype=torch.long)
    if ids.dim() != 1:
        raise ValueError(f"ids must be 1-D, got shape {tuple(ids.shape)}")
    nb = int(bos_id is not None)
    per_row = seq_len - nb  # text tokens per full row
    n_text = ids.numel()
    if max_tokens is not None:
        full, rest = divmod(max_tokens, seq_len)
        n_text = min(n_text, full * per_row + max(rest - nb, 0))
    n_rows = -(-n_text // per_row)
    body = torch.full((n_rows * per_row,), pad_id, dtype=torch.long)
    body[:n_text] = ids[:n_text]
    mask = torch.zeros(n_rows * per_row, dtype=torch.long)
    mask[:n_text] = 1
    body, mask = body.view(n_rows, per_row), mask.view(n_rows, per_row)
    if nb:
        body = torch.cat([torch.full((n_rows, 1), bos_id, dtype=torch.long), body], dim=1)
        mask = torch.cat([torch.ones((n_rows, 1), dtype=torch.long), mask], dim=1)
    return TokenChunks(body, mask, has_bos=bool(nb))


def text_chunks(name: str, split: str, tokenizer, seq_len: int, max_tokens: int | None = None,
                add_bos: bool = True) -> TokenChunks:
    """:func:`load_text` + :func:`tokenize_text` + :func:`chunk_tokens`: rows ``(N, seq_len)``.

    With ``add_bos`` each row starts with ``tokenizer.bos_token_id`` (or the EOS id when the
    tokenizer has no BOS, the GPT-2 convention). Padding uses the tokenizer's pad id, else its EOS
    id, else 0; padded positions are masked either way.
    """
    bos = None
    if add_bos:
        bos = tokenizer.bos_token_id
        if bos is None:
            bos = tokenizer.eos_token_id
        if bos is None:
            raise ValueError("add_bos=True but the tokenizer has neither a BOS nor an EOS token; "
                             "pass add_bos=False")
    pad = next((t for t in (tokenizer.pad_token_id, tokenizer.eos_token_id) if t is not None), 0)
    text = load_text(name, split)
    if max_tokens is None:
        ids = tokenize_text(text, tokenizer)
    else:  # tokenize a prefix only, growing it until it yields the cap plus a safety margin
        n_chars = 8 * max_tokens + 4096
        while True:
            ids = tokenize_text(text[:n_chars], tokenizer)
            if n_chars >= len(text) or ids.numel() >= max_tokens + 256:
                break
            n_chars *= 2
    return chunk_tokens(ids, seq_len, max_tokens=max_tokens, bos_id=bos, pad_id=pad)
