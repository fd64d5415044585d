"""Result cache keyed by computation and parameters, with provenance and verified, atomic writes.

Every expensive number in the book goes through :func:`cached`::

    df = cached("linearity_scan", "blocks", params, lambda: compute_scores(...),
                profile=profile, force=force)

The first argument names the *computation* (what was computed), not the notebook that asked for
it: two figures that need the same scan with the same parameters share one stored table. A
computation that yields several tables at once goes through :func:`cached_tables`. A reader finds
a table by the same computation, table name and parameters; there is deliberately no "newest
table" lookup.

A table is a tidy pandas DataFrame stored as CSV (diffable; the cpu profile's tables are committed)
next to a JSON sidecar holding its provenance: the parameters, git commit, package versions,
hardware (no absolute path of the machine), wall time, timestamp, profile, the column dtypes used
to restore the table on load, the row count and the sha256 of the CSV.

Layout::

    <results_root>/<profile>/<computation>/<table>-<hash>.csv
    <results_root>/<profile>/<computation>/<table>-<hash>.json

``hash`` is :func:`param_hash` of the parameters: the first 12 hex digits of the sha256 of their
canonical JSON (sorted keys, no whitespace). Change any parameter and you get a new file; the old
one stays until someone deletes it.

Writes are atomic: each file is written to a hidden temporary file in the same directory (mode
0644) and moved into place with ``os.replace``; the JSON sidecar is moved last. Loads are
verified: a table counts as present only when both files exist, the sidecar parses, and the CSV's
sha256 and row count match the sidecar. Anything else is a cache miss with a one-line
:class:`CacheWarning` naming the file (so :func:`cached` recomputes it), never wrong data.
Temporary files left behind by a killed writer are removed when their folder is next written.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import math
import os
import re
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from lin_utils.errors import LinUtilsError, one_line
from lin_utils.provenance import provenance
from lin_utils.paths import REPO_ROOT, results_root

FORMAT_VERSION = 2  # 2: the sidecar records the CSV's sha256 and is verified on load
HASH_CHARS = 12
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
FILE_MODE = 0o644
STALE_TMP_S = 15 * 60  # a temp file this old belongs to a writer that was killed
_TMP_RE = re.compile(r"^\..+\.tmp$")


class CacheWarning(UserWarning):
    """A stored table failed verification and is treated as absent (it will be recomputed)."""


# -------------------------------------------------------------------------------------------------
# keys and paths


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
    computation: str, table: str, params: dict, profile: str, root: Path | str | None = None
) -> tuple[Path, Path]:
    """The (csv, json) paths where a table of ``computation`` with these parameters lives.

    ``computation`` names what was computed (e.g. ``linearity_scan``), not the notebook asking.
    """
    _check_name("computation", computation)
    _check_name("table", table)
    _check_name("profile", profile)
    folder = Path(root) if root is not None else results_root()
    stem = folder / profile / computation / f"{table}-{param_hash(params)}"
    return stem.with_suffix(".csv"), stem.with_suffix(".json")


# -------------------------------------------------------------------------------------------------
# save and load


def _write_temp(path: Path, text: str) -> Path:
    """Write ``text`` to a temp file next to ``path`` and return the temp path (not yet moved).

    The temp file gets mode 0644 (``mkstemp`` creates 0600), so the moved file is readable as
    any other result file.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, FILE_MODE)
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


def _remove_stale_temps(folder: Path, max_age_s: float = STALE_TMP_S) -> list[Path]:
    """Delete hidden ``.*.tmp`` files in ``folder`` older than ``max_age_s`` (a killed writer's)."""
    removed = []
    now = time.time()
    for entry in folder.iterdir() if folder.is_dir() else []:
        try:
            if _TMP_RE.match(entry.name) and entry.is_file() and now - entry.stat().st_mtime > max_age_s:
                entry.unlink()
                removed.append(entry)
        except OSError:
            pass  # another writer removed or replaced it meanwhile
    return removed


def _tidy(df: pd.DataFrame) -> pd.DataFrame:
    """Turn a meaningful index into columns so that nothing is lost in the CSV."""
    # (pandas 3 makes set_index("block") a RangeIndex when the values are 0, 1, ...: keep its name)
    if isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and df.index.step == 1 and df.index.name is None:
        return df
    if all(name is None for name in df.index.names):
        return df.reset_index(drop=True)
    return df.reset_index()


def _stage_table(
    df: pd.DataFrame,
    computation: str,
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
            f"table {computation}/{table}: expected a pandas DataFrame, got {type(df).__name__}"
        )
    csv_path, json_path = table_paths(computation, table, params, profile, root)
    df = _tidy(df)
    if len(set(map(str, df.columns))) != len(df.columns):
        raise LinUtilsError(f"table {computation}/{table} has duplicate column names: {list(df.columns)}")
    csv_text = df.to_csv(index=False, lineterminator="\n")

    meta = {
        "format": FORMAT_VERSION,
        "computation": computation,
        "table": table,
        "profile": profile,
        "param_hash": param_hash(params),
        "params": _canonical(params),
        "rows": len(df),
        "sha256": hashlib.sha256(csv_text.encode("utf-8")).hexdigest(),
        "columns": {str(c): str(t) for c, t in df.dtypes.items()},
        "wall_time_s": None if wall_time_s is None else round(float(wall_time_s), 3),
        "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "run_id": os.environ.get(RUN_ID_ENV),
        **provenance(),
        "extra": extra,
    }
    meta_text = json.dumps(meta, indent=2, ensure_ascii=False) + "\n"

    csv_path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(csv_path.parent)
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
    computation: str,
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
    ``computation`` names what was computed, not the notebook that computed it.
    """
    staged = _stage_table(df, computation, table, params, profile, wall_time_s, root, extra)
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


def _shown(path: Path) -> Path:
    """``path`` relative to the repository when inside it: a warning may reach a published page."""
    for p in (Path(path), Path(path).resolve()):
        try:
            return p.relative_to(REPO_ROOT)
        except ValueError:
            continue
    return Path(path)


def _miss(path: Path, reason: str) -> None:
    warnings.warn(f"result cache: {_shown(path)}: {one_line(reason)}; treated as missing",
                  CacheWarning, stacklevel=3)
    return None


def _read_sidecar(json_path: Path) -> dict | None:
    """The parsed sidecar, or None (with a warning) when it is unreadable or not a mapping."""
    try:
        meta = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return _miss(json_path, f"unreadable sidecar ({type(e).__name__}: {one_line(e, 80)})")
    if not isinstance(meta, dict) or not meta:
        return _miss(json_path, "empty sidecar")
    return meta


_READ: dict[Path, Path] = {}  # csv -> json sidecar of every table loaded in this process


def files_read() -> list[tuple[Path, Path]]:
    """The ``(csv, json)`` files of every table :func:`load_table` returned in this process.

    In reading order, each once. A notebook's kernel runs one page, so this is what the page
    used: :mod:`lin_utils.report` offers them for download. :func:`cached` reads every table
    back from disk, so fresh computations are listed too.
    """
    return list(_READ.items())


def forget_reads() -> None:
    """Empty the :func:`files_read` log (e.g. between pages run in one process)."""
    _READ.clear()


def load_table(
    computation: str, table: str, params: dict, profile: str, root: Path | str | None = None
) -> pd.DataFrame | None:
    """Load a stored table of ``computation``, or return None when it is not (validly) cached.

    The CSV must match the sidecar's sha256 and row count, and the sidecar must parse; otherwise
    a one-line :class:`CacheWarning` names the file and None is returned (a cache miss), so a
    truncated or hand-edited table is recomputed rather than read.

    Numbers come back as numbers, and every column gets the dtype recorded in the sidecar.
    In string columns only an empty cell reads as missing (the text "NA" stays "NA").
    """
    csv_path, json_path = table_paths(computation, table, params, profile, root)
    if not json_path.exists():
        return None
    meta = _read_sidecar(json_path)
    if meta is None:
        return None
    try:
        data = csv_path.read_bytes()
    except OSError as e:
        return _miss(csv_path, f"table unreadable ({type(e).__name__})")
    want_hash, want_rows = meta.get("sha256"), meta.get("rows")
    if not isinstance(want_hash, str) or not isinstance(want_rows, int):
        return _miss(json_path, "sidecar records no sha256 or row count (written by an older version)")
    if hashlib.sha256(data).hexdigest() != want_hash:
        return _miss(csv_path, "content does not match the sha256 in its sidecar")
    columns = meta.get("columns")
    if not isinstance(columns, dict):
        return _miss(json_path, "sidecar records no column dtypes")
    if not columns:
        return pd.DataFrame() if want_rows == 0 else _miss(csv_path, "no columns but rows")
    text_cols = {
        name: str
        for name, dtype in columns.items()
        if dtype in ("object", "str", "string", "category")
    }
    # pandas >= 3 parses floats exactly by default and deprecates the option
    exact = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}
    try:
        # rows end in "\n" (see save_table); a bare "\r" inside a text cell is not quoted by the
        # writer, and the default reader would take it for a line end
        df = pd.read_csv(
            io.BytesIO(data), dtype=text_cols or None, keep_default_na=False, na_values=[""],
            lineterminator="\n", **exact,
        )
        df = _restore_dtypes(df, columns)
    except (ValueError, TypeError, pd.errors.ParserError) as e:
        return _miss(csv_path, f"unparsable ({type(e).__name__}: {one_line(e, 80)})")
    if len(df) != want_rows:
        return _miss(csv_path, f"{len(df)} rows, its sidecar says {want_rows}")
    _READ[csv_path] = json_path
    return df


def load_provenance(
    computation: str, table: str, params: dict, profile: str, root: Path | str | None = None
) -> dict:
    """The JSON sidecar of a stored table. Raises LinUtilsError when it is missing or unreadable."""
    csv_path, json_path = table_paths(computation, table, params, profile, root)
    if not json_path.exists():
        raise LinUtilsError(
            f"no stored result for {computation}/{table} with these parameters "
            f"(profile {profile}): {json_path} does not exist"
        )
    try:
        meta = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise LinUtilsError(f"unreadable sidecar {json_path}: {one_line(e)}") from None
    if not isinstance(meta, dict):
        raise LinUtilsError(f"unreadable sidecar {json_path}: not a JSON object")
    return meta


RUN_ID_ENV = "LIN_RUN_ID"


def _written_this_run(computation: str, table: str, params: dict, profile: str, root) -> bool:
    """Whether the stored table was computed during the current ``lin-utils book run``.

    The runner sets ``$LIN_RUN_ID`` for the notebooks of one run; under ``force`` a table that
    an earlier notebook of the same run already recomputed (Fig 1's scans, read again by Fig 3)
    is fresh and is not computed twice.
    """
    run_id = os.environ.get(RUN_ID_ENV)
    if not run_id:
        return False
    _, json_path = table_paths(computation, table, params, profile, root)
    meta = _read_sidecar(json_path) if json_path.exists() else None
    return bool(meta) and meta.get("run_id") == run_id


def cached(
    computation: str,
    table: str,
    params: dict,
    compute: Callable[[], pd.DataFrame],
    *,
    profile: str,
    force: bool = False,
    root: Path | str | None = None,
    extra: dict | None = None,
) -> pd.DataFrame:
    """Return the stored table of ``computation`` for these parameters, computing it if needed.

    When the table is stored, verifies (see :func:`load_table`) and ``force`` is false, it is
    loaded and ``compute`` is not called. Under ``force`` a table already recomputed in the same
    run (``$LIN_RUN_ID``, set by the runner) is loaded too. Otherwise ``compute()`` is timed, its DataFrame saved
    atomically with provenance, and the table read back from disk, so a fresh computation and a
    later cache hit give identical frames. If ``compute`` raises, nothing is written and the
    previous stored table (if any) is kept.
    """
    if not force or _written_this_run(computation, table, params, profile, root):
        df = load_table(computation, table, params, profile, root)
        if df is not None:
            return df
    start = time.perf_counter()
    df = compute()
    wall = time.perf_counter() - start
    if not isinstance(df, pd.DataFrame):
        raise LinUtilsError(
            f"compute() for {computation}/{table} returned {type(df).__name__}, expected a DataFrame"
        )
    save_table(df, computation, table, params, profile, wall, root, extra=extra)
    loaded = load_table(computation, table, params, profile, root)
    if loaded is None:
        raise LinUtilsError(f"table {computation}/{table} did not verify right after it was written")
    return loaded


def cached_tables(
    computation: str,
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
    The tables are loaded when all of them are stored and verify (and not ``force``); otherwise
    all are recomputed, and written only once every one of them is staged, each with the same
    wall time.
    """
    tables = list(tables)
    if not force or all(_written_this_run(computation, t, params, profile, root) for t in tables):
        loaded = {t: load_table(computation, t, params, profile, root) for t in tables}
        if all(df is not None for df in loaded.values()):
            return loaded
    start = time.perf_counter()
    out = compute()
    wall = time.perf_counter() - start
    if not isinstance(out, dict) or set(out) != set(tables):
        got = sorted(out) if isinstance(out, dict) else type(out).__name__
        raise LinUtilsError(f"compute() for {computation} returned {got}, expected tables {tables}")
    staged: list[tuple[Path, Path]] = []
    try:
        for t in tables:
            staged += _stage_table(out[t], computation, t, params, profile, wall, root, extra)
    except BaseException:
        _discard(staged)
        raise
    _commit(staged)
    back = {t: load_table(computation, t, params, profile, root) for t in tables}
    bad = [t for t, df in back.items() if df is None]
    if bad:
        raise LinUtilsError(f"table(s) {', '.join(bad)} of {computation} did not verify right after they were written")
    return back
