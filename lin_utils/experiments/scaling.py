"""Beyond the paper: why is the score about 0.99 at scale and 0.76 here? (the ``scaling`` page)

With Y = X + B (B the block's output), the least-squares residual of Y on X equals that of B on
X, so per block, on centered sums of squares,

    1 - score = (1 - score_nores) * ||B_c||^2 / ||Y_c||^2

(the columns ``sse``, ``ss_block`` and ``ss_y`` of
:meth:`lin_utils.linearity.LinearityAccumulator.result`). The score with the residual is fixed by
two factors: how linear the block's own output is (``1 - score_nores``) and how small that
output is next to the stream (``ratio_sq`` = ``ss_block / ss_y``). This module measures which of
the two moves with depth, width, training tokens and norm placement:

* :func:`grid_models`: the models of the study, as :class:`~lin_utils.train.TrainConfig` objects of
  the zoo (same tokenizer, data, loop and model cache, :mod:`lin_utils.zoo`), with grid sizes
  named by :func:`lin_utils.train.configs.grid_size`;
* :func:`scaling_study`: trains the missing models (``jobs`` single-threaded processes at once,
  like :func:`lin_utils.zoo.train_profile`), scans every trained model and a random-init copy of
  every shape, and returns the tables ``blocks``, ``models``, ``fit`` and ``extrapolation``;
* :func:`fit_loglinear`: ordinary least squares with classical standard errors (QR, no explicit
  inverse), used for ``log(1 - score) = a + b log(blocks) + c log(width)``.

Per model the three quantities are averaged over blocks as geometric means, so that the identity
holds for the model means too (the mean of logs is additive) and the fitted coefficients of the
two factors add up exactly to those of ``1 - score``.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.linalg
import torch
from scipy import stats

from .. import results, zoo
from ..arch import from_config
from ..data import text_chunks
from ..extract import iter_block_states
from ..config import StudyConfig, check_bool, check_str, check_str_list
from ..errors import LinUtilsError
from ..jobs import Job, last_line, run_jobs
from ..scan import ScanConfig, load_scan_inputs, scan_blocks
from ..train import TrainConfig
from ..train.configs import GRID_FAMILIES, grid_size, settable_fields, zoo_config
from ..train.loop import prepare
from ..train.loop import train as train_loop
from ..train.tokenizer import TokenizerSpec, load_or_train_tokenizer

__all__ = ["SCALING", "PAPER_SHAPES", "GridModel", "ScalingConfig", "grid_models", "fit_loglinear", "predict_loglinear",
           "scaling_study", "model_summary", "fit_tables", "identity_gap"]

SCALING = "scaling_study"
SCAN = "scaling_scan"
VERSION = 1  # of the tables' columns and of what the scans compute
#: (blocks, width) of the paper's models that the trend is extrapolated to
PAPER_SHAPES = {"GPT-2-small": (12, 768), "GPT-2-XL": (48, 1600), "OPT-1.3B": (24, 2048)}
#: the three per-model quantities of the identity, each a geometric mean over blocks
TARGETS = ("one_minus_score", "one_minus_nores", "ratio_sq")
_TRAIN_FIXED = ("size", "max_tokens")


# ------------------------------------------------------------------------------------------------
# the models


@dataclass(frozen=True)
class GridModel:
    """One model of the study: its family, shape and token budget, and its training config."""

    family: str
    blocks: int
    width: int
    config: "object"  # lin_utils.train.TrainConfig

    @property
    def tokens(self) -> int:
        """Tokens actually trained on (whole steps)."""
        return self.config.steps * self.config.tokens_per_step

    @property
    def label(self) -> str:
        return f"{self.config.size}@{self.tokens}"

    @property
    def random_label(self) -> str:
        return f"random:{self.config.size}"


def _positive_ints(name: str, values) -> list[int]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise LinUtilsError(f"{name} must be a non-empty list of positive integers, got {values!r}")
    for v in values:
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise LinUtilsError(f"{name} must be a list of positive integers, got {values!r}")
    return list(dict.fromkeys(values))


def _shape(name: str, value) -> tuple[int, int]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise LinUtilsError(f"{name} must be a [blocks, width] pair, got {value!r}")
    for v in value:
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise LinUtilsError(f"{name} must be a [blocks, width] pair of positive integers, got {value!r}")
    return int(value[0]), int(value[1])


def grid_models(depths: Sequence[int], widths: Sequence[int], train_tokens: int, train_config: Mapping, *,
                token_shape: Sequence[int] | None = None, token_budgets: Sequence[int] = (),
                norm_shapes: Sequence[Sequence[int]] = (), norm_families: Sequence[str] = ("mistral", "olmo2"),
                ) -> list[GridModel]:
    """The study's models, without duplicates (same weight key), in a stable order.

    * the grid: every (depth, width) with the ``mistral`` (pre-norm) family, ``train_tokens`` each;
    * the token series: shape ``token_shape`` = [blocks, width] at every budget of ``token_budgets``;
    * norm placement: every shape of ``norm_shapes`` in every family of ``norm_families``
      (:data:`lin_utils.train.configs.GRID_FAMILIES`) at ``train_tokens``.

    ``train_config`` holds the other :class:`~lin_utils.train.TrainConfig` fields, shared by all
    (tokenizer, data, sequence length, batch, schedule, seed...); not ``size`` or ``max_tokens``.
    """
    depths, widths = _positive_ints("depths", depths), _positive_ints("widths", widths)
    (train_tokens,) = _positive_ints("train_tokens", [train_tokens])
    if not isinstance(train_config, Mapping):
        raise LinUtilsError(f"train_config must be a mapping of TrainConfig fields, got {train_config!r}")
    fields = settable_fields(_TRAIN_FIXED)
    bad = sorted(set(train_config) - fields)
    if bad:
        raise LinUtilsError(f"train_config: unknown or fixed TrainConfig field(s) {', '.join(bad)} "
                            f"(size and max_tokens are set by the grid)")
    for fam in norm_families:
        if fam not in GRID_FAMILIES:
            raise LinUtilsError(f"norm_families: unknown family {fam!r}; expected {', '.join(GRID_FAMILIES)}")
    wanted: list[tuple[str, int, int, int]] = [("mistral", L, d, train_tokens) for d in widths for L in depths]
    if token_budgets:
        if token_shape is None:
            raise LinUtilsError("token_budgets needs token_shape = [blocks, width]")
        L, d = _shape("token_shape", token_shape)
        wanted += [("mistral", L, d, t) for t in _positive_ints("token_budgets", token_budgets)]
    for shape in norm_shapes:
        L, d = _shape("norm_shapes", shape)
        wanted += [(fam, L, d, train_tokens) for fam in norm_families]
    out, seen = [], set()
    for fam, L, d, t in wanted:
        try:
            cfg = TrainConfig(size=grid_size(L, d, fam), max_tokens=t, **train_config)
        except ValueError as exc:
            raise LinUtilsError(f"grid model {fam} L{L} d{d} with {t} tokens: {exc}") from None
        k = cfg.key()
        if k not in seen:
            seen.add(k)
            out.append(GridModel(fam, L, d, cfg))
    return out


def _cost(m: GridModel) -> float:
    """Rough training cost (for scheduling the longest runs first): tokens x matmul parameters."""
    d, L, v = m.width, m.blocks, m.config.vocab_size
    return m.tokens * (L * (2 * d * d + 2 * d * max(d // 2, 16) + 9 * d * d) + v * d)


# ------------------------------------------------------------------------------------------------
# training and scanning one model


def _train(m: GridModel, *, progress: bool, device: str | None, validate: bool = True) -> Path:
    """Train ``m`` into the zoo's model cache (``$LIN_CACHE/zoo/<key>/``) unless it is there."""

    folder = zoo.zoo_dir() / m.config.key()
    final = folder / "final"
    if (final / "meta.json").is_file():
        return final
    with zoo._lock(folder):
        if not (final / "meta.json").is_file():
            (folder / "entry.json").write_text(json.dumps({"name": m.label, "profile": "scaling",
                                                           "variant": m.family}, indent=1))
            train_loop(m.config, folder, progress=progress, device=device, evaluate=validate)
    return final


def _scan_fields(scan: Mapping) -> dict:
    names = {f.name for f in dataclasses.fields(ScanConfig)} - {"model"}
    bad = sorted(set(scan) - names)
    if bad:
        raise LinUtilsError(f"scan: unknown ScanConfig field(s) {', '.join(bad)}")
    out = ScanConfig(model="-", **scan).key()
    out.pop("model")
    return out


def _scan_params(m: GridModel, trained: bool, scan: Mapping) -> dict:
    """The cache key of one scan: the weights (trained) or the architecture and seed (random)."""

    c = m.config
    if trained:
        return {"version": VERSION, "init": "trained", "weights": c.key(), "size": c.size, "tokens": m.tokens,
                "scan": _scan_fields(scan)}
    return {"version": VERSION, "init": "random", "size": c.size, "vocab_size": c.vocab_size, "seed": c.seed,
            "context": c.seq_len, "tokenizer": TokenizerSpec(c.vocab_size, c.tokenizer_stories).identity(),
            "scan": _scan_fields(scan)}


def identity_gap(table: pd.DataFrame) -> pd.Series:
    """|(1 - score) - (1 - score_nores) * ss_block / ss_y| per row (0 up to rounding)."""
    return ((1 - table.score) - (1 - table.score_nores) * table.ss_block / table.ss_y).abs()


def _compute_scan(m: GridModel, trained: bool, scan: Mapping, progress: bool, train_device: str | None,
                  validate: bool = True) -> pd.DataFrame:


    c = m.config
    info = dict(family=m.family, width=m.width, init="trained" if trained else "random",
                train_tokens=m.tokens if trained else 0, size=c.size)
    if trained:
        final = _train(m, progress=progress, device=train_device, validate=validate)
        meta = json.loads((final / "meta.json").read_text())
        cfg = ScanConfig(model=str(final), **scan)
        table, _ = scan_blocks(cfg, progress=progress)
        num = {k: math.nan if meta.get(k) is None else float(meta[k])
               for k in ("val_loss", "val_bpb", "n_parameters", "tokens_per_cpu_s")}
        info.update(weights_key=c.key(), val_loss=num["val_loss"], val_bpb=num["val_bpb"],
                    n_params=num["n_parameters"], tokens_per_cpu_s=num["tokens_per_cpu_s"])
        label = m.label
    else:
        cfg = ScanConfig(model=m.random_label, **scan)
        tok = load_or_train_tokenizer(TokenizerSpec(c.vocab_size, c.tokenizer_stories))
        model = from_config(zoo_config(c.size, c.vocab_size, max_position_embeddings=c.seq_len), seed=c.seed,
                            dtype=getattr(torch, cfg.dtype), device=cfg.device)
        chunks = text_chunks(cfg.dataset, cfg.split, tok, min(cfg.seq_len, c.seq_len), max_tokens=cfg.max_tokens,
                             add_bos=cfg.add_bos)
        table, _ = scan_blocks(cfg, progress=progress, model=model, chunks=chunks)
        info.update(weights_key="", val_loss=math.nan, val_bpb=math.nan,
                    n_params=sum(p.numel() for p in model.parameters()), tokens_per_cpu_s=math.nan)
        label = m.random_label
    table["model"] = label
    for k, v in info.items():
        table[k] = v
    table["one_minus_score"] = 1 - table.score
    table["one_minus_nores"] = 1 - table.score_nores
    table["ratio_sq"] = table.ss_block / table.ss_y
    table["identity_gap"] = identity_gap(table)
    return table


def _scan(m: GridModel, trained: bool, scan: Mapping, *, profile: str, force: bool, progress: bool,
          device: str | None, validate: bool = True) -> pd.DataFrame:
    return results.cached(SCAN, "blocks", _scan_params(m, trained, scan),
                          lambda: _compute_scan(m, trained, scan, progress, device, validate), profile=profile,
                          force=force)


def _scan_stored(m: GridModel, trained: bool, scan: Mapping, profile: str) -> bool:
    return results.load_table(SCAN, "blocks", _scan_params(m, trained, scan), profile) is not None


# ------------------------------------------------------------------------------------------------
# fits


def fit_loglinear(y, X: Mapping[str, Sequence[float]]) -> dict:
    """Ordinary least squares ``y = X beta + e`` with an intercept, by QR.

    Args:
        y: (n,) responses.
        X: regressors by name, each (n,); an ``intercept`` column is added first.

    Returns:
        ``{"terms": [names], "coef": (p,), "se": (p,), "cov": (p, p), "n", "dof", "sigma2", "r2"}``;
        ``cov = sigma2 (X^T X)^-1`` from the triangular factor (NaN when dof = 0).
    """

    y = np.asarray(y, dtype=np.float64)
    names = ["intercept", *X]
    A = np.column_stack([np.ones_like(y)] + [np.asarray(X[k], dtype=np.float64) for k in X])
    n, p = A.shape
    if y.ndim != 1 or len(y) != n:
        raise LinUtilsError(f"y must be a vector of {n} responses, got shape {y.shape}")
    if not np.all(np.isfinite(A)) or not np.all(np.isfinite(y)):
        raise LinUtilsError("fit_loglinear: responses and regressors must be finite")
    if n < p:
        raise LinUtilsError(f"fit_loglinear: {n} points cannot fit {p} terms ({', '.join(names)})")
    Q, R = np.linalg.qr(A)
    if np.min(np.abs(np.diag(R))) <= 1e-12 * np.max(np.abs(np.diag(R))):
        raise LinUtilsError(f"fit_loglinear: the regressors {', '.join(names)} are collinear "
                            "(does each vary over the points?)")
    coef = scipy.linalg.solve_triangular(R, Q.T @ y)
    resid = y - A @ coef
    dof = n - p
    sigma2 = float(resid @ resid / dof) if dof > 0 else math.nan
    Rinv = scipy.linalg.solve_triangular(R, np.eye(p))
    cov = sigma2 * (Rinv @ Rinv.T)
    tss = float(((y - y.mean()) ** 2).sum())
    return {"terms": names, "coef": coef, "se": np.sqrt(np.diag(cov)), "cov": cov, "n": n, "dof": dof,
            "sigma2": sigma2, "r2": 1 - float(resid @ resid) / tss if tss > 0 else math.nan}


def predict_loglinear(fit: dict, x: Mapping[str, float], level: float = 0.95) -> tuple[float, float, float, float]:
    """``(mean, se, lo, hi)`` of the fitted mean at regressors ``x`` (Student t interval)."""

    x0 = np.array([1.0] + [float(x[k]) for k in fit["terms"][1:]])
    mean = float(x0 @ fit["coef"])
    se = float(math.sqrt(x0 @ fit["cov"] @ x0)) if fit["dof"] > 0 else math.nan
    t = float(stats.t.ppf(0.5 + level / 2, fit["dof"])) if fit["dof"] > 0 else math.nan
    return mean, se, mean - t * se, mean + t * se


def model_summary(blocks: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, init): shape, tokens, and over blocks the geometric means of the three
    quantities of the identity (``gm_*``), their arithmetic means (``mean_*``), the mean scores and
    the largest identity gap."""
    rows = []
    keys = ["model", "init", "family", "n_blocks", "width", "train_tokens", "size"]
    for key, g in blocks.groupby(keys, sort=False):
        row = dict(zip(keys, key))
        for t in TARGETS:
            v = np.clip(g[t].to_numpy(np.float64), np.finfo(np.float64).tiny, None)
            row[f"gm_{t}"] = float(np.exp(np.log(v).mean()))
            row[f"mean_{t}"] = float(g[t].mean())
        for c in ("score", "score_nores", "heldout", "heldout_nores", "norm_ratio"):
            row[c] = float(g[c].mean())
        row.update(val_loss=float(g.val_loss.iloc[0]), n_params=float(g.n_params.iloc[0]),
                   n_tokens=int(g.n_tokens.iloc[0]), identity_gap_max=float(g.identity_gap.max()))
        rows.append(row)
    return pd.DataFrame(rows)


_FIT_COLUMNS = ["fit", "init", "target", "term", "coef", "se", "n", "dof", "r2"]
_EXTRA_COLUMNS = ["shape", "blocks", "width", "init", "target", "log_pred", "se", "lo", "hi", "pred", "delta_log",
                  "ref_blocks", "ref_width", "b_blocks", "b_blocks_se", "c_width", "c_width_se"]


def fit_tables(models: pd.DataFrame, grid_tokens: int, token_shape: Sequence[int] | None,
               shapes: Mapping[str, Sequence[int]] = PAPER_SHAPES) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The depth-width fits (trained and random init, each target), the token slope, and the
    extrapolation of the trained models' depth-width fits to ``shapes``. A fit needs at least two
    depths, two widths and four models; without them its rows are absent (empty tables).

    ``fit``: one row per (fit, init, target, term) with ``coef``, ``se``, ``n``, ``dof``, ``r2``.
    ``extrapolation``: one row per (shape, init, target): ``log_pred``, ``se``, 95% ``lo``/``hi``
    of the log, ``pred`` = exp(log_pred), ``delta_log`` (change of the log from the largest grid
    shape, which splits exactly into the two factors' changes), and for ``one_minus_score`` the
    predicted score with its interval (``score_lo`` cut at 0, since in-sample 1 - score <= 1).
    """
    fits, extra = [], []
    grid = models[(models.family == "mistral") & (((models.init == "trained") & (models.train_tokens == grid_tokens))
                                                  | (models.init == "random"))]
    for init in ("trained", "random"):
        g = grid[grid.init == init]
        if g.n_blocks.nunique() < 2 or g.width.nunique() < 2 or len(g) < 4:
            continue
        X = {"log_blocks": np.log(g.n_blocks.to_numpy(float)), "log_width": np.log(g.width.to_numpy(float))}
        ref = {"log_blocks": math.log(g.n_blocks.max()), "log_width": math.log(g.width.max())}
        for t in TARGETS:
            f = fit_loglinear(np.log(g[f"gm_{t}"].to_numpy(float)), X)
            for term, c, s in zip(f["terms"], f["coef"], f["se"]):
                fits.append(dict(fit="depth-width", init=init, target=t, term=term, coef=float(c), se=float(s),
                                 n=f["n"], dof=f["dof"], r2=f["r2"]))
            if init != "trained":  # the paper's models are trained; random init is fitted, not extrapolated
                continue
            ref_mean = predict_loglinear(f, ref)[0]
            for name, (L, d) in shapes.items():
                mean, se, lo, hi = predict_loglinear(f, {"log_blocks": math.log(L), "log_width": math.log(d)})
                row = dict(shape=name, blocks=L, width=d, init=init, target=t, log_pred=mean, se=se, lo=lo, hi=hi,
                           pred=math.exp(mean), delta_log=mean - ref_mean, ref_blocks=int(g.n_blocks.max()),
                           ref_width=int(g.width.max()),
                           b_blocks=float(f["coef"][1]), b_blocks_se=float(f["se"][1]),
                           c_width=float(f["coef"][2]), c_width_se=float(f["se"][2]))
                if t == "one_minus_score":
                    # in-sample 1 - score lies in [0, 1], so the score's interval is cut at 0
                    row.update(score_pred=1 - math.exp(mean), score_lo=1 - min(math.exp(hi), 1.0),
                               score_hi=1 - math.exp(lo))
                extra.append(row)
    if token_shape is not None:
        L, d = token_shape
        s = models[(models.init == "trained") & (models.family == "mistral") & (models.n_blocks == L)
                   & (models.width == d)]
        if s.train_tokens.nunique() >= 2:
            for t in TARGETS:
                f = fit_loglinear(np.log(s[f"gm_{t}"].to_numpy(float)), {"log_tokens": np.log(s.train_tokens.to_numpy(float))})
                for term, c, se in zip(f["terms"], f["coef"], f["se"]):
                    fits.append(dict(fit="tokens", init="trained", target=t, term=term, coef=float(c), se=float(se),
                                     n=f["n"], dof=f["dof"], r2=f["r2"]))
    return (pd.DataFrame(fits, columns=_FIT_COLUMNS),
            pd.DataFrame(extra, columns=_EXTRA_COLUMNS + ["score_pred", "score_lo", "score_hi"]))


# ------------------------------------------------------------------------------------------------
# the study


def _jobs_default(device: str | None) -> int:
    return 1 if (device or "cpu").startswith("cuda") else min(2, os.cpu_count() or 1)


def _run_parallel(todo: list[tuple[GridModel, bool]], scan: Mapping, *, profile: str, force: bool, jobs: int,
                  device: str | None, progress: bool, validate: bool) -> None:
    """Train and scan ``todo`` = [(model, also scan its random-init copy)] in ``jobs`` processes."""

    data = {(c.vocab_size, c.tokenizer_stories, c.data_stories, c.seq_len, c.seed): c for c in (m.config for m, _ in todo)}
    for cfg in data.values():
        prepare(cfg)  # tokenizer and token stream, once, before the workers start
    work = []
    for m, with_random in sorted(todo, key=lambda mr: -_cost(mr[0])):
        spec = dict(config=m.config.to_dict(), family=m.family, blocks=m.blocks, width=m.width, random=with_random,
                    scan=dict(scan), profile=profile, force=force, device=device, validate=validate)
        work.append(Job(m.label, "lin_utils.experiments.scaling", ("job", json.dumps(spec)),
                        zoo.zoo_dir() / m.config.key() / "scaling.log"))
    failed = run_jobs(work, jobs=jobs, desc="scaling", progress=progress)
    if failed:
        raise LinUtilsError(f"scaling study: training or scanning failed for {', '.join(j.label for j in failed)} "
                            f"(log: {failed[0].log}): {last_line(failed[0])}")


def _job(spec: dict) -> None:
    """One worker of :func:`_run_parallel`: train, scan, and scan the random-init copy."""


    cfg = spec["config"]
    m = GridModel(spec["family"], spec["blocks"], spec["width"], TrainConfig(**cfg))
    if m.config.num_threads:
        torch.set_num_threads(m.config.num_threads)
    kw = dict(profile=spec["profile"], force=spec["force"], progress=False, device=spec["device"],
              validate=spec["validate"])
    _scan(m, True, spec["scan"], **kw)
    if spec["random"]:
        _scan(m, False, spec["scan"], **kw)


def _study_tables(models: list[GridModel], scan: Mapping, grid_tokens: int, token_shape, *, profile: str,
                  force: bool, jobs: int, device: str | None, progress: bool, validate: bool) -> dict[str, pd.DataFrame]:
    shapes_done: set[str] = set()
    todo = []
    for m in models:
        first_of_shape = m.config.size not in shapes_done
        shapes_done.add(m.config.size)
        todo.append((m, first_of_shape))
    if jobs > 1:
        pending = [(m, r) for m, r in todo if force or not _scan_stored(m, True, scan, profile)
                   or (r and not _scan_stored(m, False, scan, profile))]
        if pending:
            _run_parallel(pending, scan, profile=profile, force=force, jobs=jobs, device=device, progress=progress,
                          validate=validate)
        force = False  # the workers have just (re)computed every table
    frames = []
    for m, first in todo:
        frames.append(_scan(m, True, scan, profile=profile, force=force, progress=progress, device=device,
                            validate=validate))
        if first:
            frames.append(_scan(m, False, scan, profile=profile, force=force, progress=progress, device=device))
    blocks = pd.concat(frames, ignore_index=True)
    summary = model_summary(blocks)
    fit, extrapolation = fit_tables(summary, grid_tokens, token_shape)
    return {"blocks": blocks, "models": summary, "fit": fit, "extrapolation": extrapolation}


def _frozen(value):
    """Lists (and dicts) as tuples, recursively, so that a config holding them is hashable."""
    if isinstance(value, Mapping):
        return tuple((k, _frozen(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


@dataclass(frozen=True)
class ScalingConfig(StudyConfig):
    """Every parameter of :func:`scaling_study` (see its arguments); the defaults are the cpu
    profile's. ``train_config`` and ``scan`` are mappings (TrainConfig and ScanConfig fields)."""

    depths: tuple[int, ...] = (2, 4, 8, 16)
    widths: tuple[int, ...] = (32, 64, 128)
    train_tokens: int = 1_500_000
    train_config: Mapping = dataclasses.field(default_factory=lambda: {
        "vocab_size": 2048, "seq_len": 256, "batch_size": 16, "lr": 0.002, "warmup_steps": 20,
        "val_tokens": 16384, "log_every": 10, "precision": "fp32", "num_threads": 1})
    token_shape: tuple[int, int] | None = (4, 64)
    token_budgets: tuple[int, ...] = (187_500, 375_000, 750_000, 1_500_000, 3_000_000)
    norm_shapes: tuple[tuple[int, int], ...] = ((4, 64), (8, 64))
    norm_families: tuple[str, ...] = ("mistral", "olmo2")
    scan: Mapping = dataclasses.field(default_factory=lambda: {
        "dataset": "tinystories", "split": "validation", "max_tokens": 16384, "seq_len": 256, "batch_size": 8,
        "exclude_bos": True, "device": "cpu"})
    jobs: int | None = 2
    train_device: str | None = None
    validate: bool = True
    identity_models: tuple[str, ...] = ("stories260K", "random:stories260K")

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        set_("depths", tuple(_positive_ints("depths", self.depths)))
        set_("widths", tuple(_positive_ints("widths", self.widths)))
        set_("token_budgets", tuple(_positive_ints("token_budgets", self.token_budgets))
             if self.token_budgets else ())
        set_("token_shape", None if self.token_shape is None else _shape("token_shape", self.token_shape))
        set_("norm_shapes", tuple(_shape("norm_shapes", s) for s in self.norm_shapes))
        set_("norm_families", check_str_list("norm_families", self.norm_families))
        for name in ("train_config", "scan"):
            if not isinstance(getattr(self, name), Mapping):
                raise LinUtilsError(f"{name} must be a mapping, got {getattr(self, name)!r}")
        if self.jobs is not None and (not isinstance(self.jobs, int) or isinstance(self.jobs, bool) or self.jobs < 1):
            raise LinUtilsError(f"jobs must be a positive integer, got {self.jobs!r}")
        check_str("train_device", self.train_device, none=True)
        check_bool("validate", self.validate)
        set_("identity_models", check_str_list("identity_models", self.identity_models, empty=True))

    def __hash__(self):
        return hash(tuple(_frozen(getattr(self, f.name)) for f in dataclasses.fields(self)))


def scaling_study(config: ScalingConfig, *, profile: str, force: bool = False, cache_only: bool = False,
                  progress: bool = True) -> dict[str, pd.DataFrame] | None:
    """Train the grid (:func:`grid_models`), scan every model and a random-init copy of every
    shape, and fit the trend (all parameters in ``config``).

    Args:
        depths, widths, train_tokens, train_config, token_shape, token_budgets, norm_shapes,
            norm_families: the models (see :func:`grid_models`).
        scan: :class:`~lin_utils.scan.ScanConfig` fields (not ``model``) shared by every scan.
        jobs: models trained (and scanned) at once, each in its own single-threaded process
            (default: 2 on CPU, 1 on CUDA); 1 runs everything in this process.
        train_device: training device (default: CUDA when available).
        validate: validation loss and bits per byte at the end of training (the ``val_loss``
            column; NaN without). Does not change the weights, so it is not part of any key: a
            model already trained keeps whatever its run measured.

    Returns:
        ``{"blocks": one row per (model, block) with the scan's columns (``n_blocks`` is the
        model's depth, ``depth`` the block's relative position), ``family``, ``width``, ``init``,
        ``train_tokens``, ``one_minus_score``, ``one_minus_nores``, ``ratio_sq`` (=
        ``ss_block / ss_y``) and ``identity_gap``; "models": :func:`model_summary`; "fit" and
        "extrapolation": :func:`fit_tables`}``. None with ``cache_only`` when not computed yet.
    """
    c = config
    models = grid_models(c.depths, c.widths, c.train_tokens, c.train_config, token_shape=c.token_shape,
                         token_budgets=c.token_budgets, norm_shapes=c.norm_shapes, norm_families=c.norm_families)
    scan_fields = _scan_fields(c.scan)
    jobs = _jobs_default(scan_fields["device"]) if c.jobs is None else c.jobs
    grid_tokens = models[0].tokens
    tshape = None if c.token_shape is None else list(c.token_shape)
    params = {"version": VERSION, "models": [m.config.key() for m in models], "scan": scan_fields,
              "grid_tokens": grid_tokens, "token_shape": tshape, "paper_shapes": PAPER_SHAPES}
    names = ["blocks", "models", "fit", "extrapolation"]
    if cache_only:
        tables = {t: results.load_table(SCALING, t, params, profile) for t in names}
        return None if any(v is None for v in tables.values()) else tables
    return results.cached_tables(
        SCALING, names, params,
        lambda: _study_tables(models, dict(c.scan), grid_tokens, tshape, profile=profile, force=force, jobs=jobs,
                              device=c.train_device, progress=progress, validate=c.validate),
        profile=profile, force=force)


IDENTITY = "scaling_identity"
IDENTITY_VERSION = 1


def _identity_rows(cfg: ScanConfig, progress: bool) -> pd.DataFrame:
    """Per block, 1 − score from an independent float64 QR fit of the block output B on the stream X
    (centered, numpy) against the accumulator's, and the identity with the QR fit's own terms."""


    model, _, chunks = load_scan_inputs(cfg)
    states: dict[int, list[np.ndarray]] = {}
    for h, mask in iter_block_states(model, chunks.batches(cfg.batch_size), exclude_bos=cfg.exclude_bos,
                                     device=cfg.device, progress=progress, total=chunks.n_batches(cfg.batch_size)):
        for i, x in h.items():
            states.setdefault(i, []).append(x[mask].to(torch.float64).cpu().numpy())
    acc = scan_blocks(cfg, progress=progress, model=model, chunks=chunks)[0].set_index("block")
    rows = []
    for i in range(len(states) - 1):
        X, Y = np.concatenate(states[i]), np.concatenate(states[i + 1])
        Xc, Yc = X - X.mean(0), Y - Y.mean(0)
        Bc = Yc - Xc
        q, _ = np.linalg.qr(Xc)
        resid = Bc - q @ (q.T @ Bc)  # the residual of B on X, and of Y on X (Y = X + B)
        sse, ss_y, ss_b = float((resid ** 2).sum()), float((Yc ** 2).sum()), float((Bc ** 2).sum())
        one_minus_qr = sse / ss_y
        rows.append(dict(model=cfg.model, block=i, n_tokens=len(X), d=X.shape[1],
                         one_minus_score=float(1 - acc.loc[i, "score"]), one_minus_score_qr=one_minus_qr,
                         one_minus_nores_qr=sse / ss_b, ratio_sq_qr=ss_b / ss_y,
                         gap_accumulator=abs(one_minus_qr - float(1 - acc.loc[i, "score"])),
                         gap_identity=abs(one_minus_qr - (sse / ss_b) * (ss_b / ss_y))))
    return pd.DataFrame(rows)


def identity_check(models: Sequence[str], scan: Mapping, *, profile: str, force: bool = False,
                   cache_only: bool = False, progress: bool = True) -> pd.DataFrame | None:
    """The scaling identity checked independently: for each model (a spec that loads without training,
    e.g. stories260K or a ``random:`` grid shape), per block, 1 − score from a float64 QR fit of the
    block output on the stream, next to the accumulator's (``gap_accumulator``), and the identity
    1 − score = (1 − score_nores) · ‖B_c‖²/‖Y_c‖² on the QR fit's own sums (``gap_identity``)."""
    frames = []
    for m in models:
        cfg = ScanConfig.from_params(m, _scan_fields(scan))
        params = {**cfg.key(), "version": IDENTITY_VERSION}
        if cache_only:
            t = results.load_table(IDENTITY, "blocks", params, profile)
            if t is None:
                return None
        else:
            t = results.cached(IDENTITY, "blocks", params, lambda cfg=cfg: _identity_rows(cfg, progress),
                               profile=profile, force=force)
        frames.append(t)
    return pd.concat(frames, ignore_index=True)


def _main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "job":
        print("usage: python -m lin_utils.experiments.scaling job JSON (a worker of scaling_study)", file=sys.stderr)
        return 2
    _job(json.loads(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
