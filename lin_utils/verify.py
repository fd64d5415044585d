"""Did a re-run reproduce the book? Recompute a profile's tables in a scratch folder and compare.

    lin-utils book verify --profile cpu [--only fig3_block_norms]

:func:`verify_profile` copies the committed tables of the profile into a temporary result root,
points ``$LIN_RESULTS_DIR`` at it and runs the selected notebooks through the runner with
``force`` into a temporary book folder. Every table the run wrote (its sidecar changed) is
paired with the committed table of the same relative path
(``<profile>/<computation>/<table>-<hash>.csv``, so the same computation, table and parameters)
and compared by :func:`compare_tables`. Neither the committed results nor the book's executed
pages are touched. (Trained models live in ``$LIN_CACHE``, outside this check.)

What "reproduced" means is a :class:`Rule` per computation (:data:`RULES`, see :func:`rule_for`):

- the same columns, and the same rows with the same keys (:attr:`Rule.key`, default
  ``model``/``block`` when present, else every non-float column);
- every non-float cell (names, counts, flags, verdicts) identical;
- every float cell within its :class:`Tolerance`, found by the first matching column-name
  pattern of the rule, then of :data:`DEFAULT_TOLERANCES`: ``|now - committed| <= abs +
  rel * |committed| + k * committed[spread]``. ``spread`` names a column of the committed table
  holding, say, the seed-to-seed standard deviation, for computations (training, fine-tuning)
  that are not reproducible to rounding error;
- the rule's own ``checks``, for anything else (e.g. the same verdict per model).

Float32 forward passes are not bit-reproducible across thread counts, kernels and BLAS builds;
the tolerances are justified in ``book/methods.md`` ("Reproducing the numbers").
"""
from __future__ import annotations

import contextlib
import fnmatch
import json
import math
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import paths, profiles, results, runner
from .errors import LinUtilsError, one_line

__all__ = [
    "DEFAULT_RULE", "DEFAULT_TOLERANCES", "Rule", "RULES", "TableCheck", "Tolerance", "compare_tables",
    "compare_trees", "register_rule", "rule_for", "verify_profile",
]

OK, DIFFERS, MISSING = "ok", "differs", "missing"


@dataclass(frozen=True)
class Tolerance:
    """How far a re-computed number may be from the committed one.

    Allowed: ``|now - committed| <= abs + rel * |committed| + k * |committed[spread]|``. NaN
    matches NaN only, an infinity only the same infinity. ``Tolerance()`` means bit-identical.
    """

    abs: float = 0.0
    rel: float = 0.0
    spread: str | None = None  # a column of the committed table (e.g. a seed-to-seed std)
    k: float = 1.0
    why: str = ""

    def allowed(self, committed: np.ndarray, spread: np.ndarray | None = None) -> np.ndarray:
        out = self.abs + self.rel * np.abs(committed)
        if self.spread is not None:
            out = out + self.k * np.abs(np.nan_to_num(spread, nan=0.0))
        return out

    def describe(self) -> str:
        parts = [f"abs {self.abs:g}" if self.abs else "", f"rel {self.rel:g}" if self.rel else "",
                 f"{self.k:g}x {self.spread}" if self.spread else ""]
        return " + ".join(p for p in parts if p) or "exact"


# Measured (book/methods.md, "Reproducing the numbers"): other thread counts, ATen and MKL kernels
# move scores and norms by <= 1e-8 (another machine of the same kind: <= 8.5e-7), and per-token
# errors, hence their quantiles, by <= 1e-6 relative. Each tolerance is 10-100x the largest
# difference seen and >= 100x below the smallest difference the book interprets (0.01).
EXACT = Tolerance(why="derived from counts alone")
SCORE = Tolerance(abs=1e-5, why="scores and R² (in [0, 1], or negative), averages over all tokens: absolute")
SCALE = Tolerance(abs=1e-9, rel=1e-5, why="norms scale with the model: relative")
QUANTILE = Tolerance(abs=1e-6, rel=1e-4, why="a quantile is one token's error: per-token noise (~1e-6 relative)")
LOSS = Tolerance(rel=1e-5, why="losses and perplexities of a fixed model: relative")
ACCURACY = Tolerance(abs=1e-9, why="a fraction of examples: one flipped example is a real difference")

# (column-name pattern, tolerance), first match wins; fnmatch patterns, case-sensitive
DEFAULT_TOLERANCES: tuple[tuple[str, Tolerance], ...] = (
    ("chance", EXACT), ("depth", EXACT),
    ("score*", SCORE), ("heldout*", SCORE), ("procrustes*", SCORE), ("cosine*", SCORE), ("r2*", SCORE),
    ("mean_sq_error", SCORE),  # = 1 - score
    ("norm_*", SCALE),
    ("median", QUANTILE), ("p[0-9]*", QUANTILE), ("max", QUANTILE), ("min", QUANTILE), ("*_ratio", QUANTILE),
    ("excess_tail", QUANTILE), ("gauss_*", QUANTILE), ("bos_*", QUANTILE), ("error", QUANTILE),
    ("*acc*", ACCURACY),
    ("*loss*", LOSS), ("*ppl*", LOSS), ("*perplexity*", LOSS),
    ("*", Tolerance(abs=1e-8, rel=1e-5, why="any other number")),
)


@dataclass(frozen=True)
class Rule:
    """What "reproduced" means for the tables of one computation.

    Attributes:
        description: the rule in words (for ``book/methods.md`` and the reader).
        key: columns that identify a row; None: ``model`` and ``block`` when present, else every
            non-float column. Rows are matched by key when keys are unique, else in order.
        tolerances: ``(pattern, Tolerance)`` pairs tried before :data:`DEFAULT_TOLERANCES`.
        ignore: column-name patterns not compared at all (wall times, timestamps).
        checks: callables ``(committed, now) -> list of problems (str)`` run on the two tables
            (rows in committed order) once rows and keys match; any problem fails the table.
    """

    description: str = "same rows and keys; every number within the default tolerance of its column"
    key: tuple[str, ...] | None = None
    tolerances: tuple[tuple[str, Tolerance], ...] = ()
    ignore: tuple[str, ...] = ()
    checks: tuple[Callable[[pd.DataFrame, pd.DataFrame], list[str]], ...] = ()

    def tolerance(self, column: str) -> Tolerance:
        for pattern, tol in (*self.tolerances, *DEFAULT_TOLERANCES):
            if fnmatch.fnmatchcase(column, pattern):
                return tol
        raise AssertionError("DEFAULT_TOLERANCES ends with '*'")

    def ignored(self, column: str) -> bool:
        return any(fnmatch.fnmatchcase(column, p) for p in self.ignore)


DEFAULT_RULE = Rule()

# computation ("linearity_scan") or "computation/table" -> Rule
RULES: dict[str, Rule] = {
    "linearity_scan": Rule(
        "float32 forward passes, float64 statistics: the same blocks, n and d; scores within 1e-5 "
        "absolute, norms within 1e-5 relative", key=("model", "block")),
    "token_errors/summary": Rule(
        "the same blocks and token counts; scores within 1e-5, quantiles and tail ratios of the "
        "per-token error within 1e-4 relative", key=("model", "block")),
    "token_errors/sample": Rule(
        "the same sampled tokens (model, block, position, in order); each token's error within "
        "1e-5 + 1e-4 relative", key=("model", "block", "position"),
        tolerances=(("error", Tolerance(abs=1e-5, rel=1e-4, why="one token's error, a figure's histogram")),)),
}


def register_rule(name: str, rule: Rule) -> Rule:
    """Declare what reproduced means for ``name`` (a computation, or ``computation/table``)."""
    if not isinstance(rule, Rule):
        raise TypeError(f"rule for {name!r} must be a verify.Rule, got {type(rule).__name__}")
    RULES[name] = rule
    return rule


def rule_for(computation: str, table: str) -> Rule:
    """The rule of ``computation/table``, else of ``computation``, else :data:`DEFAULT_RULE`."""
    return RULES.get(f"{computation}/{table}") or RULES.get(computation) or DEFAULT_RULE


# -------------------------------------------------------------------------------------------------
# comparing two tables


@dataclass
class TableCheck:
    """The verdict on one table: ``ok``, ``differs`` or ``missing`` (no committed table)."""

    path: str  # <profile>/<computation>/<table>-<hash>.csv
    status: str
    rows: int = 0
    detail: str = ""
    problems: list[str] = field(default_factory=list)
    worst: dict | None = None  # column, row, committed, now, diff, allowed

    @property
    def ok(self) -> bool:
        return self.status == OK

    def line(self) -> str:
        label = {OK: "ok     ", DIFFERS: "DIFFERS", MISSING: "MISSING"}[self.status]
        return f"{label} {self.path}: {self.detail}"


def _is_float(s: pd.Series) -> bool:
    return pd.api.types.is_float_dtype(s.dtype)


def _row_label(row: pd.Series | dict, key: Sequence[str], index: int) -> str:
    if not key:
        return f"row {index}"
    return ", ".join(f"{k}={row[k]}" for k in key)


def _key(rule: Rule, df: pd.DataFrame) -> list[str]:
    if rule.key is not None:
        return [k for k in rule.key if k in df.columns]
    if {"model", "block"} <= set(df.columns):
        return ["model", "block"]
    return [c for c in df.columns if not _is_float(df[c]) and not rule.ignored(c)]


def _same(a: Any, b: Any) -> bool:
    if pd.isna(a) and pd.isna(b):
        return True
    return a == b


def _fmt(v: Any) -> str:
    """A cell for a message: numbers short, text quoted."""
    if hasattr(v, "item") and not isinstance(v, str):
        v = v.item()
    if isinstance(v, float):
        return f"{v:.6g}"
    return repr(v) if isinstance(v, str) else str(v)


def compare_tables(committed: pd.DataFrame, now: pd.DataFrame, rule: Rule = DEFAULT_RULE,
                   path: str = "table") -> TableCheck:
    """Compare a re-computed table with the committed one under ``rule``."""
    check = TableCheck(path, OK, rows=len(committed))
    cols_c, cols_n = [c for c in committed.columns if not rule.ignored(c)], [c for c in now.columns if not rule.ignored(c)]
    extra, gone = sorted(set(cols_n) - set(cols_c)), sorted(set(cols_c) - set(cols_n))
    if gone:  # a committed number the re-run no longer gives is not reproduced
        check.status = DIFFERS
        check.detail = "different columns: " + "; ".join(
            ([f"new {', '.join(extra)}"] if extra else []) + [f"missing {', '.join(gone)}"])
        return check
    # columns that newer code adds (not in the committed table) are reported, not compared
    key = _key(rule, committed)
    # align rows: by key when keys are unique in both, else in order with equal keys
    if len(committed) != len(now):
        check.status, check.detail = DIFFERS, f"{len(now)} rows now, {len(committed)} committed"
        return check
    c, n = committed.reset_index(drop=True), now.reset_index(drop=True)
    if key and not c.duplicated(key).any() and not n.duplicated(key).any():
        kc = [tuple(r) for r in c[key].itertuples(index=False)]
        kn = {tuple(r): i for i, r in enumerate(n[key].itertuples(index=False))}
        absent = [k for k in kc if k not in kn]
        if absent:
            check.status = DIFFERS
            check.detail = (f"{len(absent)} committed row(s) not reproduced, first "
                            f"{', '.join(f'{k}={v}' for k, v in zip(key, absent[0]))}")
            return check
        n = n.iloc[[kn[k] for k in kc]].reset_index(drop=True)
    else:
        for i in range(len(c)):
            if key and not all(_same(c.at[i, k], n.at[i, k]) for k in key):
                check.status = DIFFERS
                check.detail = (f"row {i} is {_row_label(n.loc[i], key, i)} now, "
                                f"{_row_label(c.loc[i], key, i)} committed")
                return check

    problems: list[tuple[float, str]] = []  # (severity, message)
    worst: dict | None = None
    for col in cols_c:
        a, b = c[col], n[col]
        if not (_is_float(a) or _is_float(b)) or col in key:
            bad = [i for i in range(len(c)) if not _same(a.iat[i], b.iat[i])]
            if bad:
                i = bad[0]
                problems.append((math.inf, f"{col} at {_row_label(c.loc[i], key, i)}: {_fmt(a.iat[i])} committed, "
                                           f"{_fmt(b.iat[i])} now ({len(bad)} cell(s) differ; compared exactly)"))
            continue
        tol = rule.tolerance(col)
        va = pd.to_numeric(a, errors="coerce").to_numpy(np.float64)
        vb = pd.to_numeric(b, errors="coerce").to_numpy(np.float64)
        spread = None
        if tol.spread is not None:
            if tol.spread not in c.columns:
                problems.append((math.inf, f"{col}: its tolerance needs column {tol.spread!r}, absent"))
                continue
            spread = pd.to_numeric(c[tol.spread], errors="coerce").to_numpy(np.float64)
        with np.errstate(invalid="ignore"):
            diff = np.abs(vb - va)
            both_nan = np.isnan(va) & np.isnan(vb)
            same_inf = np.isinf(va) & (va == vb)
            diff = np.where(both_nan | same_inf, 0.0, diff)
            diff = np.where(np.isnan(diff), np.inf, diff)  # NaN against a number
            allowed = tol.allowed(np.where(np.isfinite(va), va, 0.0), spread)
            ratio = np.where(diff == 0, 0.0, diff / np.where(allowed > 0, allowed, np.nextafter(0, 1)))
        if len(ratio) == 0:
            continue
        i = int(np.argmax(ratio))
        if worst is None or ratio[i] > worst["ratio"] or (worst["ratio"] == 0 and diff[i] > worst["diff"]):
            worst = dict(column=col, row=_row_label(c.loc[i], key, i), committed=va[i], now=vb[i],
                         diff=float(diff[i]), allowed=float(allowed[i]), ratio=float(ratio[i]), tolerance=tol)
        bad = np.flatnonzero(ratio > 1)
        if len(bad):
            j = int(bad[np.argmax(ratio[bad])])
            problems.append((float(ratio[j]),
                             f"{col} at {_row_label(c.loc[j], key, j)}: {_fmt(va[j])} committed, {_fmt(vb[j])} now "
                             f"(difference {diff[j]:.2g} > tolerance {allowed[j]:.2g}, {tol.describe()}; "
                             f"{len(bad)} cell(s) of {col} out of tolerance)"))
    if not problems:
        for extra_check in rule.checks:
            problems += [(math.inf, one_line(p, None)) for p in extra_check(c, n)]

    check.worst = worst
    check.problems = [m for _, m in sorted(problems, key=lambda p: -p[0])]
    if check.problems:
        check.status = DIFFERS
        more = f" (and {len(check.problems) - 1} more column(s) or check(s))" if len(check.problems) > 1 else ""
        check.detail = f"{len(c)} rows; {check.problems[0]}{more}"
    elif worst is None or worst["diff"] == 0:
        check.detail = f"{len(c)} rows; identical"
    else:
        check.detail = (f"{len(c)} rows; within tolerance, largest difference {worst['diff']:.2g} in "
                        f"{worst['column']} at {worst['row']} ({worst['ratio']:.0%} of its tolerance "
                        f"{worst['tolerance'].describe()})")
    if extra and not check.problems:
        check.detail += f"; new columns not in the committed table: {', '.join(extra)}"
    return check


# -------------------------------------------------------------------------------------------------
# reading tables, pairing trees


def _read(csv_path: Path) -> tuple[pd.DataFrame | None, str | None, dict]:
    """A stored table through the verified loader; ``(df, problem, sidecar)``."""
    json_path = csv_path.with_suffix(".json")
    try:
        meta = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return None, f"unreadable sidecar {json_path.name} ({type(e).__name__})", {}
    if not isinstance(meta, dict) or not all(k in meta for k in ("computation", "table", "params", "profile")):
        return None, f"sidecar {json_path.name} does not name its computation, table, params and profile", {}
    root = csv_path.parents[2]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", results.CacheWarning)
        try:
            df = results.load_table(meta["computation"], meta["table"], meta["params"], meta["profile"], root)
        except LinUtilsError as e:
            return None, one_line(e, None), meta
    if df is None:
        why = [str(w.message) for w in caught if issubclass(w.category, results.CacheWarning)]
        reason = why[0].split(": ", 2)[-1].removesuffix("; treated as missing") if why else "not found"
        return None, f"does not verify: {reason}", meta
    return df, None, meta


def _relative(csv_path: Path, root: Path) -> str:
    return csv_path.relative_to(root).as_posix()


def compare_trees(now_root: Path | str, committed_root: Path | str, tables: Sequence[str]) -> list[TableCheck]:
    """Compare each table ``tables`` (paths relative to both roots) of ``now_root`` with ``committed_root``."""
    now_root, committed_root = Path(now_root), Path(committed_root)
    checks = []
    for rel in tables:
        now_csv, committed_csv = now_root / rel, committed_root / rel
        if not committed_csv.exists() and not committed_csv.with_suffix(".json").exists():
            checks.append(TableCheck(rel, MISSING, detail=f"no committed table at {committed_csv}"))
            continue
        fresh, problem, meta = _read(now_csv)
        if fresh is None:
            checks.append(TableCheck(rel, DIFFERS, detail=f"the re-computed table {problem}"))
            continue
        committed, problem, _ = _read(committed_csv)
        if committed is None:
            checks.append(TableCheck(rel, DIFFERS, detail=f"the committed table {problem}"))
            continue
        rule = rule_for(meta["computation"], meta["table"])
        checks.append(compare_tables(committed, fresh, rule, rel))
    return checks


def _sidecars(root: Path) -> dict[str, bytes]:
    return {_relative(p, root): p.read_bytes() for p in sorted(root.rglob("*.json")) if not p.name.startswith(".")}


@contextlib.contextmanager
def _results_dir(path: Path):
    saved = os.environ.get("LIN_RESULTS_DIR")
    os.environ["LIN_RESULTS_DIR"] = str(path)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("LIN_RESULTS_DIR", None)
        else:
            os.environ["LIN_RESULTS_DIR"] = saved


def verify_profile(
    profile: str,
    only: list[str] | None = None,
    *,
    committed_root: Path | str | None = None,
    log: Callable[[str], Any] = print,
    keep: Path | str | None = None,
    **run_overrides,
) -> list[TableCheck]:
    """Re-run notebooks of ``profile`` in a scratch folder and compare every table they write.

    ``committed_root`` defaults to :func:`lin_utils.paths.results_root` (``$LIN_RESULTS_DIR`` or
    ``data/results``). Its ``<profile>/`` tables are copied into the scratch root first, so that
    ``only`` works as in ``lin-utils book run`` (earlier notebooks' tables come from the cache);
    under ``force`` every table the selected notebooks use is recomputed, and exactly those (their
    sidecars changed) are compared. ``keep``: a folder to keep the scratch results and executed
    notebooks in (default: a temporary folder, removed). ``run_overrides`` go to
    :func:`lin_utils.runner.run_profile` (``profiles_dir``, ``notebooks_dir``, ``toc``...).

    Returns one :class:`TableCheck` per written table, in path order. Raises LinUtilsError for
    bad input (unknown profile or notebook) or a notebook that fails.
    """
    committed_root = Path(committed_root) if committed_root is not None else paths.results_root()
    profiles.load_profile(profile, run_overrides.get("profiles_dir"))  # bad input before any copying
    run_overrides.setdefault("toc", paths.book_dir() / "_toc.yml")
    scratch = Path(keep) if keep is not None else Path(tempfile.mkdtemp(prefix="lin-verify-"))
    if keep is not None:
        if scratch.exists() and any(scratch.iterdir()):
            raise LinUtilsError(f"--keep folder {scratch} is not empty")
        scratch.mkdir(parents=True, exist_ok=True)
    try:
        root = scratch / "results"
        root.mkdir()
        if (committed_root / profile).is_dir():
            shutil.copytree(committed_root / profile, root / profile,
                            ignore=shutil.ignore_patterns(".*.tmp"))
        before = _sidecars(root)
        with _results_dir(root):
            runner.run_profile(profile, only=only, force=True, log=log, book_dir=scratch / "book", **run_overrides)
        after = _sidecars(root)
        written = [rel.removesuffix(".json") + ".csv" for rel, data in after.items() if before.get(rel) != data]
        return compare_trees(root, committed_root, written)
    finally:
        if keep is None:
            shutil.rmtree(scratch, ignore_errors=True)


def report(checks: Sequence[TableCheck], profile: str, log: Callable[[str], Any] = print) -> int:
    """Print one line per table and a summary; the exit code: 0 only when every table agrees."""
    for check in checks:
        log(check.line())
    if not checks:
        log(f"verify {profile}: the selected notebooks wrote no result table; nothing was compared")
        return 1
    bad = [c for c in checks if not c.ok]
    counts = ", ".join(f"{sum(c.status == s for c in checks)} {s}" for s in (DIFFERS, MISSING)
                       if any(c.status == s for c in checks))
    log(f"verify {profile}: {len(checks) - len(bad)} of {len(checks)} table(s) reproduced within tolerance"
        + (f"; {counts}" if bad else ""))
    return 1 if bad else 0
