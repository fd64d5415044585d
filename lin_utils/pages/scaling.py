"""Beyond the paper: linearity against depth, width, training tokens and norm placement."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .. import plots
from ..book.glue import figure_page, glue_markdown
from ..book.tables import md_table
from ..claims import INCONCLUSIVE, NOT_RUN, OURS, PARTLY, Claim, Evidence, Judgement, Test, judge_effect
from ..experiments.scaling import ScalingConfig, fit_loglinear, identity_check, scaling_study
from ..vocab import QUANTITIES
from . import name_of

NAME = name_of(__name__)
CONFIG = ScalingConfig()
TABLE_COLUMNS = ["model", "init", "block", "n_tokens", "d", "chance", "score", "heldout", "score_nores",
                 "heldout_nores", "ratio_sq", "identity_gap"]


def tables(config: ScalingConfig, *, profile: str, force: bool = False, cache_only: bool = False,
           progress: bool = False) -> dict[str, pd.DataFrame] | None:
    """``{"blocks", "models", "fit", "extrapolation"}``: :func:`lin_utils.experiments.scaling_study`, and
    ``"identity"``: the identity checked by an independent QR fit (:func:`lin_utils.experiments.scaling.identity_check`)."""
    t = scaling_study(config, profile=profile, force=force, cache_only=cache_only, progress=progress)
    if t is None or not config.identity_models:
        return t
    identity = identity_check(config.identity_models, config.scan, profile=profile, force=force,
                              cache_only=cache_only, progress=progress)
    return None if identity is None else {**t, "identity": identity}


def _shape_key(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


def scaling_numbers(tables: dict) -> dict:
    """The scaling page's numbers: the trained depth-width fit of log(1 - score) and of its two
    factors, the extrapolation to the paper's shapes (and which factor carries the change from our
    largest grid shape), the token slope, the norm-placement ratios and the identity check."""
    models, fit, extra = tables["models"], tables["fit"], tables["extrapolation"]
    out: dict = {}
    trained = models[models.init == "trained"]
    out.update(n_trained=len(trained), n_random=int((models.init == "random").sum()),
               identity_gap_max=float(tables["blocks"].identity_gap.max()))

    def coef(fit_name, init, target, term):
        r = fit[(fit.fit == fit_name) & (fit.init == init) & (fit.target == target) & (fit.term == term)]
        return (float(r.coef.iloc[0]), float(r.se.iloc[0])) if len(r) else (np.nan, np.nan)

    short = {"one_minus_score": "", "one_minus_nores": "_nores", "ratio_sq": "_ratio"}
    for init in ("trained", "random"):
        pre = "" if init == "trained" else "random_"
        for t, suffix in short.items():
            for term, name in (("log_blocks", "b"), ("log_width", "c")):
                out[f"{pre}{name}{suffix}"], out[f"{pre}{name}{suffix}_se"] = coef("depth-width", init, t, term)
        r = fit[(fit.fit == "depth-width") & (fit.init == init) & (fit.target == "one_minus_score")]
        out[f"{pre}r2"] = float(r.r2.iloc[0]) if len(r) else np.nan
    for t, suffix in short.items():
        out[f"e{suffix}"], out[f"e{suffix}_se"] = coef("tokens", "trained", t, "log_tokens")
    grid_tokens = int(trained.train_tokens.mode().iloc[0])
    grid = trained[(trained.family == "mistral") & (trained.train_tokens == grid_tokens)]
    small = grid.sort_values(["n_blocks", "width"]).iloc[0]
    large = grid.sort_values(["n_blocks", "width"]).iloc[-1]
    out.update(grid_tokens=grid_tokens, depth_min=int(grid.n_blocks.min()), depth_max=int(grid.n_blocks.max()),
               width_min=int(grid.width.min()), width_max=int(grid.width.max()),
               score_smallest=float(small.score), score_largest=float(large.score),
               score_grid_min=float(grid.score.min()), score_grid_max=float(grid.score.max()))
    e = extra[extra.target == "one_minus_score"].set_index("shape")
    reached, reached_lo, share = 0, 0, []
    for name in e.index:
        k = _shape_key(name)
        row = e.loc[name]
        out[f"pred_{k}"], out[f"pred_{k}_lo"], out[f"pred_{k}_hi"] = row.score_pred, row.score_lo, row.score_hi
        reached += bool(row.score_pred >= 0.99)
        reached_lo += bool(row.score_lo >= 0.99)
        parts = extra[extra["shape"] == name].set_index("target").delta_log
        out[f"dlog_{k}"] = float(parts["one_minus_score"])
        out[f"dlog_nores_{k}"], out[f"dlog_ratio_{k}"] = float(parts["one_minus_nores"]), float(parts["ratio_sq"])
        share.append((float(parts["one_minus_nores"]), float(parts["ratio_sq"])))
    n = len(e)
    out["n_shapes"] = n
    out["n_reached"] = reached
    out["n_reached_lo"] = reached_lo
    out["reaches"] = (f"reaches 0.99 at {reached} of the {n} shapes by its point estimate, and at {reached_lo} "
                      f"by the lower end of its 95% interval")
    nores_sum, ratio_sum = sum(a for a, _ in share), sum(b for _, b in share)
    if not share:
        out["carried_by"] = "not measured"
    else:
        bigger = "the block's own nonlinearity (1 − score without residual)" if abs(nores_sum) > abs(ratio_sum) \
            else "the block's relative size (‖B_c‖²/‖Y_c‖²)"
        out["carried_by"] = (f"{bigger}: summed over the shapes the log of 1 − score changes by {nores_sum:+.2f} "
                             f"through the nonlinearity and {ratio_sum:+.2f} through the relative size")
    fams = models[models.family != "mistral"]
    out["norm_text"] = "not measured"
    if len(fams):
        L, d, fam = int(fams.n_blocks.iloc[0]), int(fams.width.iloc[0]), str(fams.family.iloc[0])
        texts = []
        for init in ("trained", "random"):
            pair = models[(models.n_blocks == L) & (models.width == d) & (models.init == init)
                          & (models.train_tokens.isin([0, grid_tokens]))].set_index("family")
            if fam not in pair.index or "mistral" not in pair.index:
                continue
            pre = "" if init == "trained" else "random_"
            for t, suffix in short.items():
                out[f"{pre}norm{suffix}_x"] = float(pair.loc[fam, f"gm_{t}"] / pair.loc["mistral", f"gm_{t}"])
            out[f"{pre}norm_score_mistral"] = float(pair.loc["mistral", "score"])
            out[f"{pre}norm_score_{fam}"] = float(pair.loc[fam, "score"])
            moved = "the relative size" if abs(math.log(out[f"{pre}norm_ratio_x"])) > abs(math.log(out[f"{pre}norm_nores_x"])) \
                else "the nonlinearity"
            texts.append(f"{init}: {fam} / pre-norm = ×{out[f'{pre}norm_nores_x']:.2f} in 1 − score without residual and "
                         f"×{out[f'{pre}norm_ratio_x']:.2f} in ‖B_c‖²/‖Y_c‖², so mostly {moved}")
        out["norm_text"] = "; ".join(texts) if texts else "not measured"
    return out


def judge_scaling(tables) -> Judgement:
    """The extrapolation to the paper's shapes, stated without a verdict of its own: what the
    trend predicts is reported; the two findings below are judged."""
    if isinstance(tables, pd.DataFrame):
        raise TypeError("judge_scaling takes the dict of tables of experiments.scaling_study")
    n = scaling_numbers(tables)
    preds = ", ".join(f"{name} {n[f'pred_{_shape_key(name)}']:.3f} [{n[f'pred_{_shape_key(name)}_lo']:.3f}, "
                      f"{n[f'pred_{_shape_key(name)}_hi']:.3f}]" for name in tables["extrapolation"]["shape"].unique())
    ours = (f"1 − score ∝ L^{n['b']:.2f}±{n['b_se']:.2f} · d^{n['c']:.2f}±{n['c_se']:.2f} at {n['grid_tokens']:,} tokens; "
            f"predicted score {preds}; {n['reaches']}")
    return Judgement(ours, PARTLY if n["n_reached"] else INCONCLUSIVE,
                     "an extrapolation beyond the grid, not a test")


GRID = "the trained grid at one token budget, log(1 − score) = a + b log(blocks) + c log(width)"
DEEPER = Test(f"the depth slope b of {GRID} (geometric mean over blocks), with its least-squares standard error", -1,
              "grid models")
WIDER = Test(f"the width slope c of {GRID} (geometric mean over blocks), with its least-squares standard error", +1,
             "grid models")


def _slope(tables: dict, term: str, test: Test, words: str) -> Judgement:
    fit = tables["fit"]
    r = fit[(fit.fit == "depth-width") & (fit.init == "trained") & (fit.target == "one_minus_score")
            & (fit.term == term)]
    if r.empty:
        return Judgement("no depth-width fit in the table", NOT_RUN, "fewer than two depths and two widths")
    trained = tables["models"].init.eq("trained").sum()
    coef, se, n = float(r.coef.iloc[0]), float(r.se.iloc[0]), int(r.n.iloc[0]) if "n" in r else int(trained)
    arith = arithmetic_fit(tables).get(term, (math.nan, math.nan))
    ours = (f"{words} {coef:+.2f} ± {se:.2f} over {n} trained grid models (arithmetic mean over blocks instead: "
            f"{arith[0]:+.2f} ± {arith[1]:.2f})")
    return judge_effect(test, Evidence(coef, se, n), ours)


def judge_depth(tables) -> Judgement:
    return _slope(tables, "log_blocks", DEEPER, "slope of log(1 − score) in log(blocks)")


def judge_width(tables) -> Judgement:
    return _slope(tables, "log_width", WIDER, "slope of log(1 − score) in log(width)")


def arithmetic_fit(tables: dict) -> dict[str, tuple[float, float]]:
    """The depth-width fit of log(1 − mean score), the arithmetic mean over blocks (the quantity
    Fig 1's rule reads), beside the page's geometric-mean fit: ``{term: (coef, se)}`` and ``r2``."""
    models = tables["models"]
    trained = models[(models.init == "trained") & (models.family == "mistral")]
    if trained.empty:
        return {}
    g = trained[trained.train_tokens == trained.train_tokens.mode().iloc[0]]
    if g.n_blocks.nunique() < 2 or g.width.nunique() < 2 or len(g) < 4:
        return {}
    f = fit_loglinear(np.log(1 - g.score.to_numpy(float)),
                      {"log_blocks": np.log(g.n_blocks.to_numpy(float)), "log_width": np.log(g.width.to_numpy(float))})
    out = {t: (float(c), float(e)) for t, c, e in zip(f["terms"], f["coef"], f["se"])}
    out["r2"] = (float(f["r2"]), math.nan)
    return out


def reach(tables: dict) -> dict:
    """How far the extrapolation reaches beyond the grid: width and depth ratios of the paper's shapes
    to the largest grid shape."""
    models = tables["models"]
    trained = models[(models.init == "trained") & (models.family == "mistral")]
    shapes = tables["extrapolation"].drop_duplicates("shape")
    if trained.empty or shapes.empty:
        return dict(width_reach_min=math.nan, width_reach_max=math.nan, depth_reach_max=math.nan)
    return dict(width_reach_min=float(shapes.width.min() / trained.width.max()),
                width_reach_max=float(shapes.width.max() / trained.width.max()),
                depth_reach_max=float(shapes.blocks.max() / trained.n_blocks.max()))


CLAIMS = [
    Claim("Beyond: depth", "Our own finding: trained at a fixed token budget, deeper models are more linear",
          "not studied (the paper does not vary size)", "", judge_depth, order=130, test=DEEPER, kind=OURS),
    Claim("Beyond: width", "Our own finding: trained at a fixed token budget, wider models are less linear",
          "not studied (the paper does not vary size)", "", judge_width, order=140, test=WIDER, kind=OURS),
]


def numbers(tables: dict) -> dict:
    """The page's prose numbers (:func:`scaling_numbers`), the arithmetic-mean fit, the reach of the
    extrapolation and the two findings' verdicts."""
    arith = arithmetic_fit(tables)
    depth, width = judge_depth(tables), judge_width(tables)
    identity = tables.get("identity")
    checks = {} if identity is None else dict(
        qr_gap_max=float(identity.gap_accumulator.max()), qr_identity_gap_max=float(identity.gap_identity.max()),
        qr_models=", ".join(identity.model.unique()), qr_blocks=len(identity))
    return {**scaling_numbers(tables), **reach(tables), **checks,
            "b_arith": arith.get("log_blocks", (math.nan,))[0], "b_arith_se": arith.get("log_blocks", (0, math.nan))[1],
            "c_arith": arith.get("log_width", (math.nan,))[0], "c_arith_se": arith.get("log_width", (0, math.nan))[1],
            "verdict_depth": depth.verdict, "verdict_width": width.verdict,
            "reason_depth": depth.reason, "reason_width": width.reason}


def summary(tables: dict) -> pd.DataFrame:
    """Per trained model and its random-init copy: validation loss, mean score with and without the
    residual, and the geometric means over blocks of the identity's three quantities.

    The model's name carries its family, shape and token budget (``grid-mistral-L4-d64@1499136``),
    so those are not repeated as columns: the table fits the text column.
    """
    m = tables["models"]
    out = pd.DataFrame({
        "model": m.model, "val loss": m.val_loss, "score": m.score, "score, no residual": m.score_nores,
        "held-out": m.heldout, "1 − score": m.gm_one_minus_score, "1 − score, no residual": m.gm_one_minus_nores,
        "‖B_c‖² / ‖Y_c‖²": m.gm_ratio_sq,
    })
    out.attrs["formats"] = {"val loss": ".3f", "score": ".3f", "score, no residual": ".3f", "held-out": ".3f",
                            "1 − score": ".4f", "1 − score, no residual": ".3f", "‖B_c‖² / ‖Y_c‖²": ".4f"}
    return out




def fit_table(tables: dict) -> pd.DataFrame:
    """The fitted coefficients with standard errors, one row per (fit, init, quantity)."""
    f = tables["fit"]
    rows = []
    for (fit, init, target), g in f.groupby(["fit", "init", "target"], sort=False):
        g = g.set_index("term")
        row = {"fit": f"{fit}, {init}", "quantity": QUANTITIES.get(target, target),
               "n": int(g.n.iloc[0]), "R²": float(g.r2.iloc[0])}
        for term in g.index:
            row[term.replace("_", " ").replace("width", "d")] = f"{g.loc[term, 'coef']:+.3f} ± {g.loc[term, 'se']:.3f}"
        rows.append(row)
    return pd.DataFrame(rows).fillna("")


page_numbers = numbers  # from what tables() returns


def show(config: ScalingConfig, *, profile: str, force: bool = False) -> dict[str, pd.DataFrame]:
    t = tables(config, profile=profile, force=force)
    glue_markdown("fits", md_table(fit_table(t)))
    glue_markdown("differences", (
        "**How this differs from the paper.** The paper does not vary model size or training tokens: it scores "
        "released models (768 to 4,096 wide, trained on billions of tokens). This page is our own study: small "
        f"Mistral-shaped (and OLMo2-shaped) models trained here on TinyStories at one token budget "
        f"({config.train_tokens:,} tokens), one run per shape (no seeds), scanned on "
        f"{int(t['blocks'].n_tokens.min()):,} tokens of the {config.scan.get('dataset', 'tinystories')} "
        f"{config.scan.get('split', 'validation')} split."))
    figure_page(NAME, profile, plots.scaling(t), numbers=numbers(t), summary=summary(t),
                table=t["blocks"][TABLE_COLUMNS])
    return t
