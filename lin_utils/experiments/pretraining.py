"""Section 4 of the paper: the regularized model zoo, Figs 2 and 4, and Table 3.

* :func:`zoo_training` (the ``model_zoo`` notebook): trains the missing zoo entries of a profile
  and tabulates their training curves and final validation loss, also in bits per byte.
* :func:`training_dynamics` (Fig 2): mean linearity over blocks at every log-spaced checkpoint of
  zoo models, or at hub revisions (Pythia's ``@stepN``) through the same scan code.
* :func:`linearity_profiles` of :mod:`lin_utils.experiments` (Fig 4) on ``zoo:`` specs.
* :func:`story_quality` (Table 3): completions of held-out story openings by every model, graded
  by an LLM judge when one is configured, else by clearly labelled automatic proxies.

Every table is cached by what it computes; the zoo models themselves live in the model cache
(:mod:`lin_utils.zoo`), so a fresh clone renders the book from the committed tables without
training anything.
"""
from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import results
from ..config import StudyConfig, check_int, check_number, check_str, check_str_list
from .linearity import scan_table
from ..scan import ScanConfig, model_key

__all__ = ["StoriesConfig", "checkpoint_specs", "recipe_sweep", "story_quality", "sweep_numbers", "training_dynamics",
           "zoo_training"]

SWEEP = "recipe_sweep"
ZOO = "zoo_training"
DYNAMICS = "training_dynamics"
STORIES = "story_quality"
_ZOO = "zoo:"


def _zoo_name(spec: str) -> str | None:
    return spec[len(_ZOO):].partition("@")[0] if spec.startswith(_ZOO) else None


# ------------------------------------------------------------------------------------------------
# the zoo notebook


def _zoo_tables(names: Sequence[str], reference: str | None, device: str | None, progress: bool) -> dict[str, pd.DataFrame]:
    from .. import zoo
    from ..models import load_model
    from ..train.loop import BPB_CHARS
    from ..train.metrics import bits_per_byte
    from ..train.packing import validation_texts

    summary, curves = [], []
    trained = zoo.train_many(list(names), progress=progress, device=device)  # several at once on a CPU
    for name in names:
        e = zoo.entry(name)
        final = trained[e.name]
        meta = json.loads((final / "meta.json").read_text())
        cfg = e.config
        summary.append(dict(
            model=f"{_ZOO}{name}", size=cfg.size, variant=e.variant, seed=e.seed, regularizer=cfg.regularizer,
            reg_lambda=cfg.reg_lambda, n_params=meta.get("n_parameters", math.nan), steps=meta["steps"],
            tokens=meta["tokens"], val_loss=meta.get("val_loss", math.nan), val_bpb=meta.get("val_bpb", math.nan),
            heldout_loss=meta.get("heldout_loss", math.nan), tokens_per_s=meta.get("tokens_per_s", math.nan),
            tokens_per_cpu_s=meta.get("tokens_per_cpu_s", math.nan), weights_key=zoo.key(name),
        ))
        val = {v["step"]: v["val_loss"] for v in meta.get("val_history", [])}
        for h in meta["history"]:
            curves.append(dict(model=f"{_ZOO}{name}", step=h["step"], tokens=h["step"] * cfg.tokens_per_step,
                               loss=h["loss"], reg=h.get("reg", 0.0), val_loss=val.get(h["step"], math.nan)))
        for step, loss in val.items():
            if not any(c["model"] == f"{_ZOO}{name}" and c["step"] == step for c in curves):
                curves.append(dict(model=f"{_ZOO}{name}", step=step, tokens=step * cfg.tokens_per_step,
                                   loss=math.nan, reg=math.nan, val_loss=loss))
    if reference:
        import torch

        model, tok = load_model(reference, dtype=torch.float32)
        bpb = bits_per_byte(model, tok, validation_texts(BPB_CHARS))
        summary.append(dict(model=reference, size="reference", variant="reference", seed=math.nan, regularizer="none",
                            reg_lambda=0.0, n_params=sum(p.numel() for p in model.parameters()), steps=math.nan,
                            tokens=math.nan, val_loss=math.nan, val_bpb=bpb, heldout_loss=math.nan,
                            tokens_per_s=math.nan, tokens_per_cpu_s=math.nan, weights_key=""))
    curves = pd.DataFrame(curves).sort_values(["model", "step"], kind="stable").reset_index(drop=True)
    return {"summary": pd.DataFrame(summary), "curves": curves}


@dataclass(frozen=True)
class ZooConfig(StudyConfig):
    """The zoo page: the entries shown (trained when missing), the reference trained elsewhere, the
    training device, and the recipe sweep shown beside them (:data:`lin_utils.zoo.SWEEPS`; None: none)."""

    entries: tuple[str, ...] = ("cpu-small-baseline",)
    reference: str | None = "stories260K"
    device: str | None = "cpu"
    sweep: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "entries", check_str_list("entries", self.entries))
        check_str("reference", self.reference, none=True)
        check_str("device", self.device, none=True)
        check_str("sweep", self.sweep, none=True)


def zoo_training(names: Sequence[str], *, reference: str | None = "stories260K", profile: str, force: bool = False,
                 cache_only: bool = False, device: str | None = None, progress: bool = True) -> dict[str, pd.DataFrame] | None:
    """Train the missing zoo entries ``names`` and tabulate them.

    Returns:
        ``{"summary": one row per model (size (the architecture), variant, seed, regularizer, λ,
        parameters, steps, tokens, final validation loss in nats/token and bits per byte, loss on the
        held-out training tail, tokens/s and tokens per CPU-second), with ``reference``
        (a model trained elsewhere, bits per byte only) as the last row,
        "curves": one row per logged step (training loss, regularizer term, validation loss)}``.
        Keyed by the entries' weight keys, so a changed training configuration is recomputed.
    """
    from .. import zoo

    params = {"models": {n: zoo.key(n) for n in names}, "reference": reference}
    if cache_only:
        tables = {t: results.load_table(ZOO, t, params, profile) for t in ("summary", "curves")}
        return None if any(v is None for v in tables.values()) else tables
    return results.cached_tables(ZOO, ["summary", "curves"], params,
                                 lambda: _zoo_tables(names, reference, device, progress), profile=profile, force=force)


# ------------------------------------------------------------------------------------------------
# the recipe sweep (the zoo page)


def _block0_ratio(model, rows) -> float:
    """Mean over tokens (position 0 excluded) of ‖block 0's output‖ / ‖its input stream‖."""
    import torch

    from ..extract import capture

    model.eval()
    with torch.no_grad(), capture(model, [0, 1]) as cap:
        model(input_ids=rows, use_cache=False)
        h0, h1 = cap[0][:, 1:].double(), cap[1][:, 1:].double()
    return float(((h1 - h0).norm(dim=-1) / h0.norm(dim=-1)).mean())


def _sweep_run(run: Mapping, progress: bool, device: str | None = None) -> dict:
    """One sweep run, cached as ``$LIN_CACHE/sweep/<key>.json`` (its model is not kept), so a
    killed sweep loses at most the run in progress (which itself resumes from its last state)."""
    import shutil

    import torch
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    from ..paths import cache_dir
    from ..results import atomic_write_text
    from ..train.loop import train
    from ..train.packing import heldout_rows

    cfg = run["config"]
    root = cache_dir() / "sweep"
    done = root / f"{cfg.key()}.json"
    labels = dict(size=run["size"], lr=run["lr"], warmup=str(run["warmup"]), warmup_steps=run["warmup_steps"],
                  init_std=run["init_std"])
    if done.is_file():  # the same weights under another label (e.g. 20 steps or 0.125 of 160) are one run
        return {**json.loads(done.read_text()), **labels}
    folder = root / cfg.key()
    res = train(cfg, folder, progress=progress, device=device)
    final = folder / "final"
    meta = json.loads((final / "meta.json").read_text())
    model = AutoModelForCausalLM.from_pretrained(str(final), dtype=torch.float32)  # on the CPU
    tok = PreTrainedTokenizerFast.from_pretrained(str(final))
    ratio = _block0_ratio(model, heldout_rows(tok, cfg.seq_len, 8 * cfg.seq_len))
    out = dict(**labels, steps=cfg.steps, tokens=cfg.steps * cfg.tokens_per_step,
               heldout_loss=meta["heldout_loss"], heldout_tokens=meta["heldout_tokens"],
               val_loss=meta["val_loss"], val_bpb=meta["val_bpb"], block0_ratio=ratio,
               final_train_loss=float(np.mean([h["loss"] for h in meta["history"][-8:]])),
               tokens_per_cpu_s=meta["tokens_per_cpu_s"], tokens_per_s=meta["tokens_per_s"],
               train_cpu_s=res.train_cpu_s if res.resumed_from == 0 else math.nan,
               weights_key=cfg.key(),
               history=[dict(step=h["step"], loss=h["loss"]) for h in meta["history"]])
    atomic_write_text(done, json.dumps(out))
    shutil.rmtree(folder, ignore_errors=True)
    return out


def recipe_sweep(sweep: str, *, profile: str, force: bool = False, cache_only: bool = False,
                 progress: bool = True, device: str | None = None) -> dict[str, pd.DataFrame] | None:
    """The baseline recipe sweep ``sweep`` (:data:`lin_utils.zoo.SWEEPS`): short runs at each
    size over learning rate, warmup and initialisation std, one at a time in this process.

    Each run is scored by its loss on the held-out tail of the *training* corpus
    (:func:`lin_utils.train.packing.heldout_rows`, never trained on), never on the validation
    head that the pages report; the head's loss and bits per byte are recorded for information.

    Returns:
        ``{"runs": one row per run (size, lr, warmup as declared and in steps, init_std, steps,
        tokens, heldout_loss, val_loss, val_bpb, block0_ratio (mean ‖block 0 output‖ / ‖input‖
        on held-out tokens), final_train_loss (mean of the last 8 steps), tokens_per_cpu_s,
        tokens_per_s, train_cpu_s, weights_key, chosen: the lowest heldout_loss of its size),
        "curves": the training loss of every run at every step}``. Keyed by the runs' weight keys.
    """
    from .. import zoo

    runs = zoo.sweep_runs(sweep)
    params = {"sweep": sweep, "runs": [dict(size=r["size"], lr=r["lr"], warmup=str(r["warmup"]),
                                            init_std=r["init_std"], key=r["config"].key()) for r in runs]}

    def compute() -> dict[str, pd.DataFrame]:
        rows = []
        for i, r in enumerate(runs):
            if progress:
                print(f"sweep {sweep} {i + 1}/{len(runs)}: {r['size']} lr={r['lr']:g} warmup={r['warmup']} "
                      f"init_std={r['init_std']:g}", flush=True)
            rows.append(_sweep_run(r, progress, device))
        curves = pd.DataFrame([dict(size=x["size"], lr=x["lr"], warmup=x["warmup"], init_std=x["init_std"],
                                    step=h["step"], loss=h["loss"]) for x in rows for h in x["history"]])
        table = pd.DataFrame([{k: v for k, v in x.items() if k != "history"} for x in rows])
        table["chosen"] = table.heldout_loss == table.groupby("size").heldout_loss.transform("min")
        return {"runs": table, "curves": curves}

    if cache_only:
        tables = {t: results.load_table(SWEEP, t, params, profile) for t in ("runs", "curves")}
        return None if any(v is None for v in tables.values()) else tables
    return results.cached_tables(SWEEP, ["runs", "curves"], params, compute, profile=profile, force=force)


def sweep_numbers(runs: pd.DataFrame) -> dict:
    """The zoo page's sentence on the sweep: per size (``small``/``large`` by the order of the
    table), the chosen learning rate, warmup steps, init std and held-out loss, the spread of
    held-out losses over the grid, and the run count."""
    out = {"n_runs": len(runs), "steps": int(runs.steps.iloc[0]), "tokens": int(runs.tokens.iloc[0])}
    for label, size in zip(("small", "large"), dict.fromkeys(runs["size"])):
        g = runs[runs["size"] == size]
        best = g.loc[g.heldout_loss.idxmin()]
        out.update({f"{label}_size": size, f"{label}_lr": float(best.lr), f"{label}_warmup": int(best.warmup_steps),
                    f"{label}_init_std": float(best.init_std), f"{label}_heldout": float(best.heldout_loss),
                    f"{label}_val_bpb": float(best.val_bpb), f"{label}_worst": float(g.heldout_loss.max()),
                    f"{label}_ratio": float(best.block0_ratio),
                    f"{label}_tokens_per_cpu_s": float(g.tokens_per_cpu_s.median())})
    return out


# ------------------------------------------------------------------------------------------------
# Fig 2


def checkpoint_specs(model: str, revisions: Sequence[str] | None = None) -> list[tuple[int, int | None, str]]:
    """``(step, tokens_seen, spec)`` of every checkpoint of ``model`` that Fig 2 scans.

    A ``zoo:NAME`` model has the log-spaced steps of its training configuration (known without
    the model files, so cached tables are found on a fresh clone). A hub id takes ``revisions``
    (e.g. Pythia's ``step1000``); the step is the revision's number.
    """
    name = _zoo_name(model)
    if name is not None:
        from .. import zoo
        from ..train.checkpoints import log_spaced_steps

        cfg = zoo.entry(name).config
        return [(s, s * cfg.tokens_per_step, f"{_ZOO}{name}@{s}") for s in log_spaced_steps(cfg.steps)]
    if not revisions:
        raise ValueError(f"model {model!r}: a hub model needs revisions for Fig 2 (e.g. ['step0', 'step1000'])")
    out = []
    for rev in revisions:
        digits = re.findall(r"\d+", rev)
        if not digits:
            raise ValueError(f"revision {rev!r}: no step number in it")
        out.append((int(digits[-1]), None, f"{model}@{rev}"))
    return out


def training_dynamics(models: Sequence[str], scan: Mapping, *, revisions: Sequence[str] | None = None,
                      profile: str, force: bool = False, cache_only: bool = False,
                      progress: bool = True) -> pd.DataFrame | None:
    """Fig 2: linearity averaged over blocks, with and without the residual, at each checkpoint.

    Every checkpoint is one cached scan (:func:`lin_utils.experiments.scan_table`), step 0 (the
    random initialisation) included.

    Returns:
        One row per (model, step): ``tokens`` (None for hub revisions), the means over blocks of
        ``score``, ``score_nores``, ``heldout``, ``heldout_nores`` and ``norm_ratio``, the spread
        (min, max) of ``score``, and ``n_tokens``, ``d``, ``chance``.
    """
    rows = []
    for model in models:
        for step, tokens, spec in checkpoint_specs(model, revisions):
            t = scan_table(ScanConfig.from_params(spec, scan), profile=profile, force=force,
                           cache_only=cache_only, progress=progress)
            if t is None:
                return None
            rows.append(dict(model=model, step=step, tokens=tokens, n_blocks=int(t.n_blocks.iloc[0]),
                             score=t.score.mean(), score_min=t.score.min(), score_max=t.score.max(),
                             score_nores=t.score_nores.mean(), heldout=t.heldout.mean(),
                             heldout_nores=t.heldout_nores.mean(), norm_ratio=t.norm_ratio.mean(),
                             n_tokens=int(t.n_tokens.iloc[0]), d=int(t.d.iloc[0]), chance=float(t.chance.iloc[0])))
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------
# Table 3


@dataclass(frozen=True)
class StoriesConfig(StudyConfig):
    """Table 3: every model completes the same ``n_stories`` held-out openings alike.

    Attributes:
        models: :func:`lin_utils.models.load_model` specs.
        n_stories: story openings (the clean TinyStories validation head, cut mid-sentence).
        max_new_tokens, temperature, top_k, seed: the sampling, the same for every model.
        scorer: the model whose perplexity of the completions is the first proxy.
        judge_model: the judge's model (None: ``$LIN_JUDGE_MODEL``); the endpoint is
            ``$LIN_JUDGE_URL``, read from the environment only.
        judge_time_limit_s, judge_max_failures: the judging run stops (one line, an error) after
            this many seconds or this many completions in a row without grades (None: no limit);
            how long, not what: not in the cache key.
    """

    models: tuple[str, ...] = ("stories260K",)
    n_stories: int = 50
    max_new_tokens: int = 120
    temperature: float = 0.8
    top_k: int = 50
    seed: int = 0
    scorer: str = "stories260K"
    judge_model: str | None = None
    judge_time_limit_s: float | None = 3 * 3600.0
    judge_max_failures: int | None = 5

    def __post_init__(self):
        object.__setattr__(self, "models", check_str_list("models", self.models))
        check_int("n_stories", self.n_stories, minimum=1)
        check_int("max_new_tokens", self.max_new_tokens, minimum=1)
        check_number("temperature", self.temperature, minimum=0)
        check_int("top_k", self.top_k, minimum=0)
        check_int("seed", self.seed)
        check_str("scorer", self.scorer)
        check_str("judge_model", self.judge_model, none=True)
        check_number("judge_time_limit_s", self.judge_time_limit_s, minimum=0, none=True)
        check_int("judge_max_failures", self.judge_max_failures, minimum=1, none=True)

    def key(self) -> dict:
        """The cache key: the models and their weights, the sampling, the scorer and the judge's
        model (None when no endpoint is configured, so a judge's grades never mix with none)."""
        from ..evaluate.judge import MODEL_ENV, URL_ENV  # lin_utils.evaluate imports sklearn and lm-eval's tasks

        judged_by = (self.judge_model or os.environ.get(MODEL_ENV)) if os.environ.get(URL_ENV) else None
        return dict(models=list(self.models), weights={m: model_key(m).get("weights") for m in self.models},
                    n_stories=self.n_stories, max_new_tokens=self.max_new_tokens, temperature=self.temperature,
                    top_k=self.top_k, seed=self.seed, scorer=self.scorer, judge=judged_by)


def _story_tables(config: StoriesConfig, progress: bool) -> dict[str, pd.DataFrame]:
    import torch

    from ..evaluate.judge import JudgeSession, judge_from_env
    from ..evaluate.stories import complete, proxy_table, story_openings
    from ..models import load_model

    c = config
    openings = story_openings(c.n_stories, seed=c.seed)
    client = judge_from_env(None, c.judge_model)
    session = None if client is None else JudgeSession(client, time_limit_s=c.judge_time_limit_s,
                                                       max_consecutive_failures=c.judge_max_failures)
    scorer_model, scorer_tok = load_model(c.scorer, dtype=torch.float32)
    per_item = []
    for spec in c.models:
        model, tok = load_model(spec, dtype=torch.float32)
        texts = complete(model, tok, openings, max_new_tokens=c.max_new_tokens, temperature=c.temperature,
                         top_k=c.top_k, seed=c.seed, progress=progress)
        t = proxy_table(openings, texts, scorer_model, scorer_tok)
        t.insert(0, "model", spec)
        t["opening"], t["completion"] = openings, texts
        for aspect in ("grammar", "creativity", "consistency", "plot"):
            t[aspect] = math.nan
        t["judge_error"] = ""
        if session is not None:
            grades, errors = session.grade_all(openings, texts)
            for i, (g, err) in enumerate(zip(grades, errors)):
                for aspect, grade in g.items():
                    t.loc[i, aspect] = grade
                t.loc[i, "judge_error"] = err
        per_item.append(t)
    if session is not None:
        session.finish()  # a configured judge that failed every request is an error, not "no judge"
    items = pd.concat(per_item, ignore_index=True)
    summary = []
    for spec, g in items.groupby("model", sort=False):
        row = dict(model=spec, n=len(g), judged=int(g.grammar.notna().sum()))
        row["scorer_ppl"] = float(np.exp(g.scorer_nll.sum() / max(g.scorer_tokens.sum(), 1)))
        for col in ("distinct_1", "distinct_2", "repetition_4", "n_words", "grammar", "creativity", "consistency", "plot"):
            v = g[col].dropna()
            row[col] = float(v.mean()) if len(v) else math.nan
            row[f"{col}_se"] = float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else math.nan
        summary.append(row)
    return {"summary": pd.DataFrame(summary), "items": items}


def story_quality(config: StoriesConfig, *, profile: str, force: bool = False, cache_only: bool = False,
                  progress: bool = True) -> dict[str, pd.DataFrame] | None:
    """Table 3: every model of ``config`` (:class:`StoriesConfig`) completes the same held-out
    openings with the same sampling settings and seeds.

    With a judge endpoint (``$LIN_JUDGE_URL``, and ``judge_model`` or ``$LIN_JUDGE_MODEL``) the
    completions are graded for grammar, creativity, consistency and plot (1-10). Without one those
    columns stay empty and only the automatic proxies are filled: ``scorer_ppl`` (perplexity of
    the completions under ``scorer``), distinct-1/2 and the 4-gram repetition rate. Never
    presented as judge scores.

    Returns:
        ``{"summary": one row per model with means and standard errors, "items": one row per completion}``.
    """
    params = config.key()
    if cache_only:
        tables = {t: results.load_table(STORIES, t, params, profile) for t in ("summary", "items")}
        return None if any(v is None for v in tables.values()) else tables
    return results.cached_tables(STORIES, ["summary", "items"], params, lambda: _story_tables(config, progress),
                                 profile=profile, force=force)
