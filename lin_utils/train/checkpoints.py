"""Checkpoints: log-spaced model snapshots (for Fig 2), resume states, atomic folder writes.

A run folder holds::

    checkpoints/step-000000/   HF model + tokenizer + ckpt.json   (log-spaced steps, kept)
    state-000064/              model.safetensors, optimizer.pt, rng.json, state.json (latest only)
    final/                     HF model + tokenizer + meta.json   (present = the run is complete)

Every folder is written under a temporary name in the same parent and renamed into place with
``os.replace``, so a reader (or a resumed run) sees either nothing or a complete folder. An old
resume state is first renamed to a ``.trash-`` name and then deleted, so a kill during deletion
never leaves a half-deleted folder under a ``state-`` name.

Step ``s`` means "after ``s`` optimizer steps": step 0 holds the initial weights.

Nothing here unpickles arbitrary objects: a resume state could come from anywhere the cache
folder does. Weights are safetensors, the optimizer's state is loaded with
``torch.load(weights_only=True)`` (tensors and plain containers only), and the RNG states are
JSON (``rng.json``). A state written before that (``rng.pt``) is read with ``weights_only=True``
and only numpy's array constructors allowed; anything else in it is refused with one line.
"""
from __future__ import annotations

import base64
import json
import os
import random
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers.utils import logging as hf_logging

from ..errors import LinUtilsError, one_line

__all__ = ["log_spaced_steps", "atomic_dir", "save_hf", "list_checkpoints", "save_state",
           "latest_state", "load_state", "clean_tmp", "rng_state", "set_rng_state"]

_STATE = re.compile(r"^state-(\d+)$")
_CKPT = re.compile(r"^step-(\d+)$")


def log_spaced_steps(total_steps: int, per_octave: int = 1) -> list[int]:
    """Checkpoint steps 0, 1, 2, 4, 8, ... below ``total_steps``, and ``total_steps`` itself.

    ``per_octave > 1`` adds geometrically spaced steps between powers of two (rounded, deduped).
    """
    if total_steps < 0:
        raise ValueError(f"total_steps must be >= 0, got {total_steps}")
    steps = {0, total_steps}
    k = 0
    while 2 ** k < total_steps:
        for j in range(per_octave):
            s = round(2 ** (k + j / per_octave))
            if s < total_steps:
                steps.add(s)
        k += 1
    return sorted(steps)


@contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield a temporary folder next to ``final``; on success rename it to ``final``.

    ``final`` must not exist yet (a complete folder is never overwritten).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def clean_tmp(run_dir: Path) -> None:
    """Remove temporary and trash folders that a killed run left behind."""
    for parent in (run_dir, run_dir / "checkpoints"):
        if parent.is_dir():
            for p in parent.iterdir():
                if p.name.startswith((".tmp-", ".trash-")):
                    shutil.rmtree(p, ignore_errors=True)


def save_hf(model, tokenizer, final: Path, meta: dict, meta_name: str) -> None:
    """Write ``model`` (fp32 safetensors) and ``tokenizer`` as a Hugging Face folder, atomically."""

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Writing model shards" bar per checkpoint
    try:
        with atomic_dir(final) as tmp:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            (tmp / meta_name).write_text(json.dumps(meta, indent=1))
    finally:
        if bars:
            hf_logging.enable_progress_bar()


def list_checkpoints(run_dir: Path) -> list[tuple[int, int, Path]]:
    """``(step, tokens_seen, path)`` of the complete log-spaced checkpoints, by step."""
    out = []
    root = Path(run_dir) / "checkpoints"
    if root.is_dir():
        for p in root.iterdir():
            m = _CKPT.match(p.name)
            if m and (p / "ckpt.json").is_file():
                info = json.loads((p / "ckpt.json").read_text())
                out.append((int(m.group(1)), int(info["tokens_seen"]), p))
    return sorted(out)


def rng_state() -> dict:
    """The Python, numpy, torch (and CUDA) RNG states as plain JSON types."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    out = {"python": [version, list(internal), gauss],
           "numpy": [name, [int(k) for k in keys], int(pos), int(has_gauss), float(cached)],
           "torch": _b64(torch.get_rng_state())}
    if torch.cuda.is_available():
        out["cuda"] = [_b64(t) for t in torch.cuda.get_rng_state_all()]
    return out


def _b64(t: torch.Tensor) -> str:
    return base64.b64encode(t.cpu().numpy().tobytes()).decode("ascii")


def _bytes_tensor(v) -> torch.Tensor:
    if isinstance(v, torch.Tensor):  # a legacy rng.pt
        return v
    return torch.frombuffer(bytearray(base64.b64decode(v)), dtype=torch.uint8)


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` returned (or a legacy ``rng.pt`` held)."""
    version, internal, gauss = state["python"]
    random.setstate((int(version), tuple(int(x) for x in internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((str(name), np.asarray(keys, dtype=np.uint32), int(pos), int(has_gauss), float(cached)))
    torch.set_rng_state(_bytes_tensor(state["torch"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([_bytes_tensor(v) for v in state["cuda"]])


def _legacy_rng(path: Path) -> dict:
    """A ``rng.pt`` written before rng.json: tensors and numpy arrays only, never code."""
    from numpy._core.multiarray import _reconstruct  # numpy>=2 private path: only for legacy rng.pt files

    allowed = [np.ndarray, _reconstruct, np.dtype, type(np.dtype(np.uint32))]
    with torch.serialization.safe_globals(allowed):
        return torch.load(path, weights_only=True)


def save_state(run_dir: Path, step: int, model, optimizer, extra: dict) -> Path:
    """Write the resume state after ``step`` steps, then drop older ones."""

    run_dir = Path(run_dir)
    final = run_dir / f"state-{step:06d}"
    if final.exists():
        return final
    with atomic_dir(final) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()},
                  str(tmp / "model.safetensors"))
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        (tmp / "rng.json").write_text(json.dumps(rng_state()))
        (tmp / "state.json").write_text(json.dumps({"step": step, **extra}))
    for p in run_dir.iterdir():
        m = _STATE.match(p.name)
        if m and int(m.group(1)) != step:
            trash = run_dir / f".trash-{p.name}-{os.getpid()}"
            os.replace(p, trash)
            shutil.rmtree(trash, ignore_errors=True)
    return final


def latest_state(run_dir: Path) -> Path | None:
    """The resume state with the highest step, or None."""
    best = None
    if Path(run_dir).is_dir():
        for p in Path(run_dir).iterdir():
            m = _STATE.match(p.name)
            if m and (best is None or int(m.group(1)) > best[0]):
                best = (int(m.group(1)), p)
    return None if best is None else best[1]


def load_state(path: Path, model, optimizer) -> dict:
    """Load a resume state into ``model`` and ``optimizer``, restore the RNGs; return state.json.

    Raises LinUtilsError (one line naming the file) when a file of the state cannot be read
    safely: nothing in it is unpickled beyond tensors and plain containers.
    """

    path = Path(path)
    device = next(model.parameters()).device
    current = path / "model.safetensors"
    try:
        model.load_state_dict(load_file(str(current), device=str(device)))
        current = path / "optimizer.pt"
        optimizer.load_state_dict(torch.load(current, map_location=device, weights_only=True))
        current = path / "rng.json"
        if current.is_file():
            rng = json.loads(current.read_text())
        else:
            current = path / "rng.pt"
            rng = _legacy_rng(current)
        set_rng_state(rng)
        current = path / "state.json"
        return json.loads(current.read_text())
    except (KeyboardInterrupt, LinUtilsError):
        raise
    except Exception as e:  # unpickling refused, truncated file, wrong shapes, bad JSON ...
        raise LinUtilsError(f"resume state {current} cannot be loaded ({type(e).__name__}: {one_line(e, 160)}); "
                            f"delete {path} to resume from an earlier point") from None


def remove_states(run_dir: Path) -> None:
    """Delete every resume state (once ``final/`` exists they are not needed)."""
    for p in Path(run_dir).iterdir():
        if _STATE.match(p.name):
            trash = Path(run_dir) / f".trash-{p.name}-{os.getpid()}"
            os.replace(p, trash)
            shutil.rmtree(trash, ignore_errors=True)
