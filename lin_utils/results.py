"""Result cache keyed by parameters, with provenance and atomic writes.

Every expensive number in the book goes through :func:`cached`::

    df = cached("fig1_linearity_profiles", "scores", params, lambda: compute_scores(...),
                profile=profile, force=force)

A computation that yields several tables at once goes through :func:`cached_tables`, and a reader
that does not know the producer's parameters (the claims notebook) uses :func:`load_latest`.

A table is a tidy pandas DataFrame stored as CSV (diffable; the cpu profile's tables are committed)
next to a JSON sidecar holding its provenance: the parameters, git commit, package versions,
hardware, wall time, timestamp, profile, and the column dtypes used to restore the table on load.

Layout::

    <results_root>/<profile>/<notebook>/<table>-<hash>.csv
    <results_root>/<profile>/<notebook>/<table>-<hash>.json

``hash`` is :func:`param_hash` of the parameters: the first 12 hex digits of the sha256 of their
canonical JSON (sorted keys, no whitespace). Change any parameter and you get a new file; the old
one stays until someone deletes it.

Writes are atomic: each file is written to a temporary file in the same directory and moved into
place with ``os.replace``. The JSON sidecar is moved last and acts as the commit marker: a table
counts as present only when both files exist.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from lin_utils.errors import LinUtilsError

REPO_ROOT = Path(__file__).resolve().parents[1]
FORMAT_VERSION = 1
HASH_CHARS = 12
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_VERSIONED_PACKAGES = ("torch", "transformers", "numpy", "pandas")


# -------------------------------------------------------------------------------------------------
# keys and paths


def results_root() -> Path:
    """The cache root: ``$LIN_RESULTS_DIR`` if set, else ``<repo>/data/results``."""
    env = os.environ.get("LIN_RESULTS_DIR")
    return Path(env).expanduser() if env else REPO_ROOT / "data" / "results"


def _canonical(value: Any) -> Any:
    """Turn a parameter value into plain JSON types (paths -> str, tuples/sets -> lists...)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise LinUtilsError(f"parameter keys must be strings, got {k!r}")
            out[k] = _canonical(v)
        return out
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(_canonical(v) for v in value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise LinUtilsError(f"parameter values must be finite, got {value!r}")
        return value
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return _canonical(value.item())
    raise LinUtilsError(
        f"parameter value {value!r} of type {type(value).__name__} is not JSON-serializable; "
        "use str, int, float, bool, None, lists or dicts"
    )


def canonical_json(params: dict) -> str:
    """Canonical JSON of ``params``: sorted keys, no whitespace, plain types only."""
    if not isinstance(params, dict):
        raise LinUtilsError(f"params must be a dict, got {type(params).__name__}")
    return json.dumps(_canonical(params), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def param_hash(params: dict) -> str:
    """Short, stable hash of a parameter dict (12 hex digits of sha256 of its canonical JSON).

    Key order does not matter; every value does (``1`` and ``1.0`` hash differently).
    """
    return hashlib.sha256(canonical_json(params).encode("utf-8")).hexdigest()[:HASH_CHARS]


def _check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise LinUtilsError(
            f"invalid {kind} name {name!r}: use letters, digits, '_', '.', '-' (no slashes)"
        )
    return name


def table_paths(
    notebook: str, table: str, params: dict, profile: str, root: Path | str | None = None
) -> tuple[Path, Path]:
    """The (csv, json) paths where a table with these parameters lives."""
    _check_name("notebook", notebook)
    _check_name("table", table)
    _check_name("profile", profile)
    folder = Path(root) if root is not None else results_root()
    stem = folder / profile / notebook / f"{table}-{param_hash(params)}"
    return stem.with_suffix(".csv"), stem.with_suffix(".json")


# -------------------------------------------------------------------------------------------------
# provenance


def _git_info() -> dict:
    """Commit of the repository and whether tracked files have uncommitted changes.

    The result tables themselves (``data/results``) do not count: a run that rewrites them
    should not mark its own provenance dirty.

    Either value is None when git or the commit is unavailable (e.g. a source tarball).
    """

    def git(*args: str) -> str | None:
        try:
            res = subprocess.run(
                ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=20
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return res.stdout.strip() if res.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)data/results")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def _package_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _torch_info() -> dict:
    try:
        import torch
    except ImportError:
        return {"device": "cpu", "cuda": None}
    info: dict[str, Any] = {"device": "cpu", "cuda": None, "threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        info["device"] = "cuda"
        info["cuda"] = {
            "version": torch.version.cuda,
            "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        }
    return info


def provenance() -> dict:
    """Where and with what a result is being computed: git, package versions, hardware."""
    import lin_utils

    versions = {"python": platform.python_version()}
    versions.update({name: _package_version(name) for name in _VERSIONED_PACKAGES})
    versions["lin_utils"] = lin_utils.__version__
    return {
        "git": _git_info(),
        "versions": versions,
        "hardware": {
            "platform": platform.platform(),
            "machine": platform.machine(),
            "cpu_model": _cpu_model(),
            "cpu_count": os.cpu_count(),
            "torch": _torch_info(),
        },
        "python_executable": sys.executable,
    }


# -------------------------------------------------------------------------------------------------
# save and load


def _write_temp(path: Path, text: str) -> Path:
    """Write ``text`` to a temp file next to ``path`` and return the temp path (not yet moved)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically: readers see the old file or the new one, never half.

    Creates parent folders. Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _write_temp(path, text)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path




def _tidy(df: pd.DataFrame) -> pd.DataFrame:
    """Turn a meaningful index into columns so that nothing is lost in the CSV."""
    if isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and df.index.step == 1:
        return df
    if all(name is None for name in df.index.names):
        return df.reset_index(drop=True)
    return df.reset_index()


def _stage_table(
    df: pd.DataFrame,
    notebook: str,
    table: str,
    params: dict,
    profile: str,
    wall_time_s: float | None,
    root: Path | str | None,
    extra: dict | None,
) -> list[tuple[Path, Path]]:
    """Write a table and its sidecar to temp files; return (temp, final) pairs, sidecar last."""
    if not isinstance(df, pd.DataFrame):
        raise LinUtilsError(
            f"table {notebook}/{table}: expected a pandas DataFrame, got {type(df).__name__}"
        )
    csv_path, json_path = table_paths(notebook, table, params, profile, root)
    df = _tidy(df)
    if len(set(map(str, df.columns))) != len(df.columns):
        raise LinUtilsError(f"table {notebook}/{table} has duplicate column names: {list(df.columns)}")

    meta = {
        "format": FORMAT_VERSION,
        "notebook": notebook,
        "table": table,
        "profile": profile,
        "param_hash": param_hash(params),
        "params": _canonical(params),
        "rows": len(df),
        "columns": {str(c): str(t) for c, t in df.dtypes.items()},
        "wall_time_s": None if wall_time_s is None else round(float(wall_time_s), 3),
        "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **provenance(),
        "extra": extra,
    }
    meta_text = json.dumps(meta, indent=2, ensure_ascii=False) + "\n"
    csv_text = df.to_csv(index=False, lineterminator="\n")

    csv_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_csv = _write_temp(csv_path, csv_text)
    try:
        tmp_json = _write_temp(json_path, meta_text)
    except BaseException:
        tmp_csv.unlink(missing_ok=True)
        raise
    return [(tmp_csv, csv_path), (tmp_json, json_path)]


def _commit(staged: list[tuple[Path, Path]]) -> None:
    """Move staged temp files into place, in order (each sidecar after its CSV)."""
    for tmp, final in staged:
        os.replace(tmp, final)


def _discard(staged: list[tuple[Path, Path]]) -> None:
    for tmp, _ in staged:
        tmp.unlink(missing_ok=True)


def save_table(
    df: pd.DataFrame,
    notebook: str,
    table: str,
    params: dict,
    profile: str,
    wall_time_s: float | None = None,
    root: Path | str | None = None,
    *,
    extra: dict | None = None,
) -> Path:
    """Store ``df`` as CSV with a JSON provenance sidecar, atomically. Returns the CSV path.

    A meaningful (named or non-default) index is stored as columns. ``extra`` is an optional
    JSON-serializable dict kept under ``"extra"`` in the sidecar (e.g. the device a notebook used).
    """
    staged = _stage_table(df, notebook, table, params, profile, wall_time_s, root, extra)
    _commit(staged)
    return staged[0][1]


def _restore_dtypes(df: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """Cast columns back to the dtypes recorded at save time (CSV keeps only text)."""
    for name, dtype in columns.items():
        if name not in df.columns or str(df[name].dtype) == dtype:
            continue
        if dtype.startswith("datetime64"):
            df[name] = pd.to_datetime(df[name]).astype(dtype)
        elif dtype == "category":
            df[name] = df[name].astype("category")
        else:
            df[name] = df[name].astype(dtype)
    return df


def load_table(
    notebook: str, table: str, params: dict, profile: str, root: Path | str | None = None
) -> pd.DataFrame | None:
    """Load a stored table, or return None when it is not in the cache.

    Numbers come back as numbers, and every column gets the dtype recorded in the sidecar.
    In string columns only an empty cell reads as missing (the text "NA" stays "NA").
    """
    csv_path, json_path = table_paths(notebook, table, params, profile, root)
    if not (csv_path.exists() and json_path.exists()):
        return None
    columns: dict[str, str] = json.loads(json_path.read_text(encoding="utf-8")).get("columns", {})
    if not columns:
        return pd.DataFrame()
    text_cols = {
        name: str
        for name, dtype in columns.items()
        if dtype in ("object", "str", "string", "category")
    }
    # pandas >= 3 parses floats exactly by default and deprecates the option
    exact = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}
    df = pd.read_csv(
        csv_path, dtype=text_cols or None, keep_default_na=False, na_values=[""], **exact
    )
    return _restore_dtypes(df, columns)


def load_provenance(
    notebook: str, table: str, params: dict, profile: str, root: Path | str | None = None
) -> dict:
    """The JSON sidecar of a stored table. Raises LinUtilsError when the table is not stored."""
    csv_path, json_path = table_paths(notebook, table, params, profile, root)
    if not json_path.exists():
        raise LinUtilsError(
            f"no stored result for {notebook}/{table} with these parameters "
            f"(profile {profile}): {json_path} does not exist"
        )
    return json.loads(json_path.read_text(encoding="utf-8"))


def cached(
    notebook: str,
    table: str,
    params: dict,
    compute: Callable[[], pd.DataFrame],
    *,
    profile: str,
    force: bool = False,
    root: Path | str | None = None,
    extra: dict | None = None,
) -> pd.DataFrame:
    """Return the stored table for these parameters, computing and storing it if needed.

    When the table is stored and ``force`` is false, it is loaded and ``compute`` is not called.
    Otherwise ``compute()`` is timed, its DataFrame saved atomically with provenance, and the
    table read back from disk, so a fresh computation and a later cache hit give identical frames.
    If ``compute`` raises, nothing is written and the previous stored table (if any) is kept.
    """
    if not force:
        df = load_table(notebook, table, params, profile, root)
        if df is not None:
            return df
    start = time.perf_counter()
    df = compute()
    wall = time.perf_counter() - start
    if not isinstance(df, pd.DataFrame):
        raise LinUtilsError(
            f"compute() for {notebook}/{table} returned {type(df).__name__}, expected a DataFrame"
        )
    save_table(df, notebook, table, params, profile, wall, root, extra=extra)
    loaded = load_table(notebook, table, params, profile, root)
    assert loaded is not None
    return loaded


def cached_tables(
    notebook: str,
    tables: list[str],
    params: dict,
    compute: Callable[[], dict[str, pd.DataFrame]],
    *,
    profile: str,
    force: bool = False,
    root: Path | str | None = None,
    extra: dict | None = None,
) -> dict[str, pd.DataFrame]:
    """Like :func:`cached` for a computation that yields several tables at once.

    ``compute()`` returns ``{table_name: DataFrame}`` with exactly the names in ``tables``.
    The tables are loaded when all of them are stored (and not ``force``); otherwise all are
    recomputed, and written only once every one of them is staged, each with the same wall time.
    """
    tables = list(tables)
    if not force:
        loaded = {t: load_table(notebook, t, params, profile, root) for t in tables}
        if all(df is not None for df in loaded.values()):
            return loaded
    start = time.perf_counter()
    out = compute()
    wall = time.perf_counter() - start
    if not isinstance(out, dict) or set(out) != set(tables):
        got = sorted(out) if isinstance(out, dict) else type(out).__name__
        raise LinUtilsError(f"compute() for {notebook} returned {got}, expected tables {tables}")
    staged: list[tuple[Path, Path]] = []
    try:
        for t in tables:
            staged += _stage_table(out[t], notebook, t, params, profile, wall, root, extra)
    except BaseException:
        _discard(staged)
        raise
    _commit(staged)
    return {t: load_table(notebook, t, params, profile, root) for t in tables}


def load_latest(
    notebook: str, table: str, *, profile: str, root: Path | str | None = None
) -> pd.DataFrame | None:
    """The most recently computed version of a table, whatever its parameters (None if none).

    For readers that do not know the producer's parameters, such as the claims notebook.
    "Most recent" is the sidecar's timestamp (then the file's modification time).
    """
    _check_name("notebook", notebook)
    _check_name("table", table)
    _check_name("profile", profile)
    folder = (Path(root) if root is not None else results_root()) / profile / notebook
    pattern = re.compile(rf"^{re.escape(table)}-[0-9a-f]{{{HASH_CHARS}}}\.json$")
    candidates = []
    for path in folder.glob(f"{table}-*.json") if folder.is_dir() else []:
        if not pattern.match(path.name) or not path.with_suffix(".csv").exists():
            continue
        meta = json.loads(path.read_text(encoding="utf-8"))
        candidates.append((meta.get("timestamp") or "", path.stat().st_mtime, meta))
    if not candidates:
        return None
    meta = max(candidates, key=lambda c: (c[0], c[1]))[2]
    return load_table(notebook, table, meta["params"], profile, root)
