"""Section 5 of the paper (Figs 6, 7 and 8): depth pruning by the paper's criterion next to the
methods a user would pick instead, evaluated through :mod:`lin_utils.evaluate` unchanged.

:func:`pruning_study` runs everything for one model, so the figure pages that show that model
(Fig 6 or 7 for perplexity, Fig 8 for ARC-Easy) and the claims page read the same tables. It is
cached per criterion: the per-block table under :func:`study_key` (``pruning_study/blocks``, every
parameter but the criteria list) and each criterion's rows under :func:`criterion_key`
(``pruning_criterion/{results,ranks,distill,sleb}``), so adding a criterion to
:data:`lin_utils.prune.CRITERIA` and to a page's list computes only that criterion's rows:

1. one calibration pass over TinyStories **train** text (never an evaluation text):
   :func:`lin_utils.prune.calibrate`, float64 statistics reused by every criterion and every ``k``;
2. the removal sets of each criterion for ``k = 0..k_max`` (the registry
   :data:`lin_utils.prune.CRITERIA`);
   SLEB's greedy search runs on a prefix of the calibration batches (``sleb_tokens``);
3. for every set: plain **removal**, and **linear replacement** (per-block closed-form affine maps;
   for a criterion whose sets are contiguous spans, the angular one, ReplaceMe's one map per span), and for the
   paper's criterion also linear replacement plus **distillation** (:func:`lin_utils.prune.distill`);
4. every distinct model is evaluated once: WikiText-2 test and TinyStories validation perplexity
   (:func:`lin_utils.evaluate.perplexity`), ARC-Easy acc and acc_norm with standard errors
   (:func:`lin_utils.evaluate.run_harness`, ``arc_limit`` documents; 0 skips it), its parameter
   count and its forward time on a fixed batch, as a speed-up over the dense model.
"""
from __future__ import annotations

import math
import statistics
import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from .. import results
from ..config import (StudyConfig, check_bool, check_choice, check_int, check_int_list, check_number, check_str,
                      check_str_list)
from ..errors import LinUtilsError
from ..scan import ScanConfig

__all__ = ["CRITERION", "PRUNING", "METHODS", "PruningConfig", "criterion_key", "pruning_study", "study_key"]

PRUNING = "pruning_study"  # the computation of the shared per-block table
CRITERION = "pruning_criterion"  # the computation of one criterion's rows
VERSION = 1
METHODS = ("remove", "linear", "distill")
TABLES = ("results", "blocks", "distill", "sleb")  # what pruning_study returns
CRITERION_TABLES = ("results", "ranks", "distill", "sleb")  # what is cached per criterion


@dataclass(frozen=True)
class PruningConfig(StudyConfig):
    """Every parameter of :func:`pruning_study` (one model), validated; defaults are the library's.

    Attributes:
        model: a :func:`lin_utils.models.load_model` spec.
        k_max: blocks removed go from 0 to ``k_max`` (about half the blocks).
        criteria: some of :data:`lin_utils.prune.CRITERIA`.
        random_seeds: one random order per seed.
        linearity_metric: the column the paper's criterion ranks by (``score``: with the residual).
        calib_*: calibration text (TinyStories train by default) and its token budget.
        ridge: relative ridge of every closed-form map (0: plain least squares).
        sleb_tokens: calibration tokens SLEB's greedy search scores (a prefix of the calibration batches).
        distill_steps, distill_lr: Adam steps (each on one calibration batch, cycled) and learning rate.
        ppl_tokens, ppl_seq_len: tokens and window of each perplexity (non-overlapping windows, BOS first).
        arc_limit: ARC-Easy test documents (None: all 2,376; 0: skip ARC-Easy).
        speed_batch, speed_reps: rows (of ``seq_len`` tokens) and repetitions of the timed forward pass.
        threads: torch threads during the study (None: unchanged); not part of the cache key.
    """

    model: str
    k_max: int
    criteria: tuple[str, ...] = ("linearity", "shortgpt", "angular", "sleb", "last", "random")
    random_seeds: tuple[int, ...] = (0, 1, 2)
    linearity_metric: str = "score"
    calib_dataset: str = "tinystories"
    calib_split: str = "train"
    calib_tokens: int = 16384
    seq_len: int = 256
    batch_size: int = 8
    exclude_bos: bool = False
    ridge: float = 0.0
    sleb_tokens: int = 4096
    distill_steps: int = 50
    distill_lr: float = 1e-3
    seed: int = 0
    ppl_tokens: int = 16384
    ppl_seq_len: int = 256
    arc_limit: int | None = 200
    arc_batch_size: int = 32
    speed_batch: int = 4
    speed_reps: int = 5
    dtype: str = "float32"
    device: str = "cpu"
    threads: int | None = 1

    def __post_init__(self):
        from ..prune import CRITERIA, LINEARITY_METRICS

        def put(name, value):
            object.__setattr__(self, name, value)

        check_str("model", self.model)
        put("k_max", check_int("k_max", self.k_max, minimum=1))
        criteria = check_str_list("criteria", self.criteria)
        if any(c not in CRITERIA for c in criteria):
            raise LinUtilsError(f"criteria must be some of {', '.join(CRITERIA)}, got {list(criteria)!r}")
        put("criteria", criteria)
        put("random_seeds", check_int_list("random_seeds", self.random_seeds, empty=True))
        if "random" in criteria and not self.random_seeds:
            raise LinUtilsError("random_seeds: the random criterion needs at least one seed")
        check_choice("linearity_metric", self.linearity_metric, LINEARITY_METRICS)
        for name in ("calib_dataset", "calib_split", "dtype", "device"):
            check_str(name, getattr(self, name))
        for name in ("calib_tokens", "seq_len", "batch_size", "ppl_tokens", "ppl_seq_len", "speed_batch", "speed_reps",
                     "sleb_tokens", "arc_batch_size"):
            put(name, check_int(name, getattr(self, name), minimum=1))
        check_bool("exclude_bos", self.exclude_bos)
        check_number("ridge", self.ridge, minimum=0)
        put("distill_steps", check_int("distill_steps", self.distill_steps, minimum=0))
        check_number("distill_lr", self.distill_lr)
        put("seed", check_int("seed", self.seed))
        put("arc_limit", check_int("arc_limit", self.arc_limit, minimum=0, none=True))
        put("threads", check_int("threads", self.threads, minimum=1, none=True))

    def key(self) -> dict:
        """The result cache's key: every field but ``threads`` (how fast, not what), the model's
        resolved spec and weight key (:meth:`lin_utils.scan.ScanConfig.key`) and the version."""
        scan = ScanConfig.from_params(self.model, {}).key()
        key = {**self.params(), "model": scan["model"], "weights": scan.get("weights"), "version": VERSION}
        key.pop("threads")
        return key

    def scan(self) -> ScanConfig:
        """The calibration pass's scan configuration (TinyStories train by default)."""
        return ScanConfig(model=self.model, dataset=self.calib_dataset, split=self.calib_split, seq_len=self.seq_len,
                          max_tokens=self.calib_tokens, batch_size=self.batch_size, dtype=self.dtype,
                          device=self.device)


@contextmanager
def _threads(n: int | None):
    """torch's intra-op threads set to ``n`` for the duration (None: unchanged). On a small shared
    CPU one thread is several times faster for models this size (no OpenMP stalls)."""
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@torch.no_grad()
def _forward_seconds(model, ids: torch.Tensor, reps: int) -> float:
    """Median wall time of a full forward pass (logits, no cache) on ``ids`` (B, T); one warm-up."""
    model(input_ids=ids, use_cache=False)
    times = []
    for _ in range(max(reps, 1)):
        if ids.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        model(input_ids=ids, use_cache=False)
        if ids.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _evaluate(model, tok, cfg: PruningConfig) -> dict:
    """Every metric of one (possibly pruned) model."""
    from ..evaluate import perplexity, run_harness
    from ..prune import count_parameters

    t0 = time.perf_counter()
    row = {}
    for name, (dataset, split) in {"wikitext": ("wikitext-2", "test"), "tinystories": ("tinystories", "validation")}.items():
        r = perplexity(model, tok, dataset, split, seq_len=cfg.ppl_seq_len, max_tokens=cfg.ppl_tokens,
                       batch_size=cfg.batch_size, add_bos=True, progress=False)
        row[f"ppl_{name}"], row[f"nll_{name}"], row[f"ppl_tokens_{name}"] = r.ppl, r.nll, r.n_scored
    for col in ("arc_acc", "arc_acc_se", "arc_acc_norm", "arc_acc_norm_se", "arc_chance"):
        row[col] = math.nan
    row["arc_n"] = 0
    if cfg.arc_limit != 0:
        run = run_harness(model, tok, tasks=["arc_easy"], limit=cfg.arc_limit, batch_size=cfg.arc_batch_size)
        t = run.table.set_index("metric")
        row.update(arc_acc=float(t.loc["acc", "value"]), arc_acc_se=float(t.loc["acc", "stderr"]),
                   arc_acc_norm=float(t.loc["acc_norm", "value"]), arc_acc_norm_se=float(t.loc["acc_norm", "stderr"]),
                   arc_chance=float(t.loc["acc", "chance"]), arc_n=int(t.loc["acc", "n"]))
    row["n_params"] = count_parameters(model)
    row["eval_s"] = time.perf_counter() - t0
    return row


def _speedup(model, edit: dict | None, student, ids: torch.Tensor, reps: int) -> tuple[float, float]:
    """(forward seconds, speed-up over the dense model): dense and pruned passes interleaved
    ``reps`` times, the speed-up the median of the paired ratios (robust to load that drifts)."""
    from ..prune import pruned

    pairs = []
    for _ in range(max(reps, 1)):
        t_dense = _forward_seconds(model, ids, 1)
        if student is not None:
            t = _forward_seconds(student, ids, 1)
        elif edit is None:
            t = _forward_seconds(model, ids, 1)
        else:
            with pruned(model, **edit):
                t = _forward_seconds(model, ids, 1)
        pairs.append((t, t_dense / t))
    return statistics.median(t for t, _ in pairs), statistics.median(r for _, r in pairs)


def _plans(cfg: PruningConfig, model, stats, batches, L: int, progress: bool) -> tuple[list[dict], pd.DataFrame, dict]:
    """The removal sets of every criterion: ``[{criterion, seed, sets: {k: blocks}}]``, SLEB's trials,
    and the orders of the ranking criteria (for the blocks table), from the criteria's registry."""
    from .. import prune

    inputs = prune.RankInputs(model=model, batches=batches, stats=stats, n_blocks=L, k_max=cfg.k_max,
                              linearity_metric=cfg.linearity_metric, exclude_bos=cfg.exclude_bos,
                              random_seeds=cfg.random_seeds, sleb_tokens=cfg.sleb_tokens,
                              tokens_per_batch=cfg.batch_size * cfg.seq_len, progress=progress)
    plans, ranks = [], {}
    sleb = pd.DataFrame(columns=["step", "block", "nll", "chosen"])
    for crit in cfg.criteria:
        for removal in prune.criterion(crit).rank(inputs):
            plans.append(dict(criterion=crit, seed=removal.seed, sets=removal.sets))
            if removal.order is not None:
                ranks[crit] = list(removal.order)
            if removal.trials is not None:
                sleb = removal.trials
    return plans, sleb, ranks


def _study_tables(cfg: PruningConfig, progress: bool) -> dict[str, pd.DataFrame]:
    from .. import prune
    from ..arch import hidden_size, n_blocks
    from ..scan import load_scan_inputs

    with _threads(cfg.threads):
        model, tok, chunks = load_scan_inputs(cfg.scan())
        L, d = n_blocks(model), hidden_size(model)
        if not 1 <= cfg.k_max < L:
            raise LinUtilsError(f"k_max must be in 1..{L - 1} for {cfg.model} ({L} blocks), got {cfg.k_max}")
        batches = list(chunks.batches(cfg.batch_size))
        stats = prune.calibrate(model, batches, max_span=cfg.k_max, exclude_bos=cfg.exclude_bos, progress=progress)
        maps = stats.block_maps(cfg.ridge)
        plans, sleb, ranks = _plans(cfg, model, stats, batches, L, progress)
        spans = sorted({(s[0], s[-1] + 1) for pl in plans if prune.criterion(pl["criterion"]).spans
                        for s in pl["sets"].values() if s})
        span_maps = prune.fit_span_maps(model, batches, spans, ridge=cfg.ridge, exclude_bos=cfg.exclude_bos,
                                        progress=progress) if spans else {}
        speed_ids = batches[0][0][: cfg.speed_batch].to(cfg.device)
        dense = _evaluate(model, tok, cfg)
        dense["forward_s"], dense["speedup"] = _speedup(model, None, None, speed_ids, cfg.speed_reps)
        dense["speedup"] = 1.0  # by definition (the measured paired ratio is its noise level)
        seen: dict[tuple, dict] = {}
        rows, curves = [], []
        info = dict(model=cfg.model, n_blocks=L, d=d, calib_tokens=stats.n_tokens)

        def row(method, plan, k, blocks, metrics, mapping):
            rows.append(dict(**info, method=method, criterion=plan["criterion"], seed=plan["seed"], k=k,
                             blocks=",".join(map(str, blocks)), mapping=mapping, **metrics))

        todo = sum(len(pl["sets"]) for pl in plans) * 2
        from tqdm import tqdm
        bar = tqdm(total=todo, desc="pruned models", disable=not progress, leave=False)
        for plan in plans:
            for k, blocks in plan["sets"].items():
                for method in ("remove", "linear"):
                    bar.update()
                    span = prune.criterion(plan["criterion"]).spans and method == "linear" and k > 0
                    mapping = "" if method == "remove" else ("span" if span else "per-block")
                    if k == 0:
                        row(method, plan, 0, (), dense, mapping)
                        continue
                    key = (method, mapping, blocks)
                    if key not in seen:
                        if method == "remove":
                            edit = dict(remove=blocks)
                        elif span:
                            s = (blocks[0], blocks[-1] + 1)
                            edit = dict(span=(s[0], s[1], span_maps[s]))
                        else:
                            edit = dict(linear={i: maps[i] for i in blocks})
                        with prune.pruned(model, **edit):
                            seen[key] = _evaluate(model, tok, cfg)
                        seen[key]["forward_s"], seen[key]["speedup"] = _speedup(model, edit, None, speed_ids, cfg.speed_reps)
                    row(method, plan, k, blocks, seen[key], mapping)
        bar.close()
        lin_plan = next((pl for pl in plans if pl["criterion"] == "linearity"), None)
        if lin_plan is not None and cfg.distill_steps > 0:
            for k, blocks in lin_plan["sets"].items():
                if k == 0:
                    row("distill", lin_plan, 0, (), dense, "per-block")
                    continue
                student = prune.replace_with_linear(model, {i: maps[i] for i in blocks})
                curve = prune.distill(student, model, batches, steps=cfg.distill_steps, lr=cfg.distill_lr,
                                      seed=cfg.seed, exclude_bos=cfg.exclude_bos, progress=progress)
                curve.insert(0, "k", k)
                curve.insert(1, "blocks", ",".join(map(str, blocks)))
                curves.append(curve)
                metrics = _evaluate(student, tok, cfg)
                metrics["forward_s"], metrics["speedup"] = _speedup(model, None, student, speed_ids, cfg.speed_reps)
                row("distill", lin_plan, k, blocks, metrics, "per-block")
                del student
    res = pd.DataFrame(rows)
    res["params_frac"] = res.n_params / dense["n_params"]
    blocks = stats.linearity()[["block", "n_tokens", "d", "score", "score_nores", "heldout", "heldout_nores", "cosine"]].copy()
    blocks.insert(0, "model", cfg.model)
    blocks["block_influence"] = stats.block_influence()
    for crit, order in ranks.items():
        rank = {b: r + 1 for r, b in enumerate(order)}
        blocks[f"rank_{crit}"] = [rank.get(b, np.nan) for b in blocks.block]
    distill_curve = (pd.concat(curves, ignore_index=True) if curves
                     else pd.DataFrame(columns=["k", "blocks", "step", "loss"]))
    distill_curve.insert(0, "model", cfg.model)
    sleb = sleb.copy()
    sleb.insert(0, "model", cfg.model)
    return {"results": res, "blocks": blocks, "distill": distill_curve, "sleb": sleb}


def study_key(config: PruningConfig) -> dict:
    """The key of what every criterion shares (the calibration pass, the dense model, the per-block
    table): :meth:`PruningConfig.key` without the criteria list."""
    key = config.key()
    key.pop("criteria")
    return key


def criterion_key(config: PruningConfig, criterion: str) -> dict:
    """The key of one criterion's rows: :func:`study_key` and the criterion."""
    return {**study_key(config), "criterion": criterion}


def _split(tables: dict[str, pd.DataFrame], criteria) -> dict[str, dict[str, pd.DataFrame]]:
    """:func:`_study_tables`' tables cut into each criterion's :data:`CRITERION_TABLES` (its ranks:
    one row per block, NaN for a criterion that does not order blocks; distillation belongs to the
    paper's criterion, SLEB's trials to SLEB)."""
    res, blocks = tables["results"], tables["blocks"]
    out = {}
    for c in criteria:
        rank = blocks[f"rank_{c}"] if f"rank_{c}" in blocks else pd.Series(np.nan, index=blocks.index)
        out[c] = {"results": res[res.criterion == c].reset_index(drop=True),
                  "ranks": pd.DataFrame({"model": blocks.model, "block": blocks.block, "rank": rank.to_numpy()}),
                  "distill": tables["distill"] if c == "linearity" else tables["distill"].iloc[:0],
                  "sleb": tables["sleb"] if c == "sleb" else tables["sleb"].iloc[:0]}
    return out


def _assemble(blocks: pd.DataFrame, per: dict[str, dict[str, pd.DataFrame]], criteria) -> dict[str, pd.DataFrame]:
    """The study's :data:`TABLES` from the shared per-block table and each criterion's tables, in
    the order one run of every criterion writes them (criteria in order, distillation last)."""
    res = pd.concat([per[c]["results"] for c in criteria], ignore_index=True)
    res = pd.concat([res[res.method != "distill"], res[res.method == "distill"]], ignore_index=True)
    blocks = blocks.copy()
    for c in criteria:
        rank = per[c]["ranks"]["rank"]
        if rank.notna().any():
            blocks[f"rank_{c}"] = rank.to_numpy()
    def concat(table):  # empty tables left out: their columns' dtypes are only what a CSV header says
        frames = [per[c][table] for c in criteria]
        return pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True)

    return {"results": res, "blocks": blocks, "distill": concat("distill"), "sleb": concat("sleb")}


def pruning_study(config: PruningConfig, *, profile: str, force: bool = False, cache_only: bool = False,
                  progress: bool = True) -> dict[str, pd.DataFrame] | None:
    """Figs 6-8 for one model: every criterion x {remove, linear replacement} x k, and distillation
    for the paper's criterion; cached per criterion (see the module docstring): only the criteria
    not cached yet are computed.

    Args:
        config: the study's parameters (:class:`PruningConfig`).
        profile: the result cache's profile folder.
        force: recompute even when the tables are cached.
        cache_only: return the cached tables, or None when one is missing (never computes).

    Returns:
        ``{"results": one row per (method, criterion, seed, k) with the removed ``blocks``, ``mapping``
        (per-block / span), perplexities, ARC-Easy acc / acc_norm with standard errors and chance,
        ``n_params``, ``params_frac``, ``forward_s`` and ``speedup``; k = 0 rows are the dense model,
        "blocks": per-block linearity, cosine, block influence and each ordered criterion's rank,
        "distill": the distillation loss curve of each k, "sleb": SLEB's evaluated candidates}``.
    """
    if not isinstance(config, PruningConfig):
        raise LinUtilsError(f"pruning_study takes a PruningConfig, got {type(config).__name__}")
    shared = study_key(config)

    def load(computation, table, params):
        if force and not results._written_this_run(computation, table, params, profile, None):
            return None
        return results.load_table(computation, table, params, profile)

    blocks = load(PRUNING, "blocks", shared)
    per = {c: {t: load(CRITERION, t, criterion_key(config, c)) for t in CRITERION_TABLES} for c in config.criteria}
    missing = [c for c in config.criteria if any(v is None for v in per[c].values())]
    if blocks is not None and not missing:
        return _assemble(blocks, per, config.criteria)
    if cache_only:
        return None
    todo = list(config.criteria) if blocks is None else missing  # the shared table comes with every criterion
    start = time.perf_counter()
    computed = _study_tables(config.replace(criteria=tuple(todo)), progress)
    wall = time.perf_counter() - start
    extra = {"computed_with": todo}  # the criteria of that run: the wall time is theirs together
    for c, tables in _split(computed, todo).items():
        for t in CRITERION_TABLES:
            results.save_table(tables[t], CRITERION, t, criterion_key(config, c), profile, wall, extra=extra)
    if blocks is None:
        blocks_out = computed["blocks"][[c for c in computed["blocks"].columns if not c.startswith("rank_")]]
        results.save_table(blocks_out, PRUNING, "blocks", shared, profile, wall, extra=extra)
    loaded = pruning_study(config, profile=profile, cache_only=True)
    if loaded is None:
        raise LinUtilsError(f"the pruning study of {config.model} did not verify right after it was written")
    return loaded
