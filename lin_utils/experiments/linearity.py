"""The computations behind the book's figures. Each returns tidy pandas tables.

Results are cached by *what was computed*, not by which notebook asked: one scan of one model
with one :class:`~lin_utils.scan.ScanConfig` is stored once per profile (computation
``linearity_scan``) and every figure that needs it (Figs 1 and 3) reads the same table. The
claims page calls the same functions with ``cache_only=True`` and the parameters the profile
selects, so it judges exactly the tables the figure pages show.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import results
from ..config import StudyConfig, check_int, check_str_list
from ..scan import ScanConfig, describe_model, load_scan_inputs, scan_blocks, token_errors

__all__ = ["DynamicsConfig", "ErrorsConfig", "ProfilesConfig", "gaussian_norm_quantiles", "linearity_profiles", "scan_table",
           "token_error_distribution", "token_error_tables"]

SCAN = "linearity_scan"
ERRORS = "token_errors"
ERRORS_VERSION = 2  # 2: gauss_median / gauss_p999 in units of rms_y, like the errors (1: raw units)


@dataclass(frozen=True)
class ProfilesConfig(StudyConfig):
    """Several models scanned alike (Figs 1, 3 and 4): the models and the scan fields they share.

    ``scan(model)`` is each model's :class:`~lin_utils.scan.ScanConfig` (the cache key of its
    table); the fields here are the ones a page sets, the others keep ScanConfig's defaults.
    """

    models: tuple[str, ...] = ("stories260K",)
    dataset: str = "tinystories"
    split: str = "validation"
    max_tokens: int = 16384
    seq_len: int = 256
    batch_size: int = 8
    exclude_bos: bool = True
    device: str = "cpu"

    def __post_init__(self):
        object.__setattr__(self, "models", check_str_list("models", self.models))
        self.scan(self.models[0])  # validates the scan fields

    def scan(self, model: str) -> ScanConfig:
        return ScanConfig.from_params(model, self.params())


@dataclass(frozen=True)
class DynamicsConfig(ProfilesConfig):
    """Fig 2: the scans of :class:`ProfilesConfig` at every checkpoint of each model; ``revisions``
    name a hub model's checkpoints (e.g. Pythia's ``["step0", "step1000"]``; zoo models need none)."""

    revisions: tuple[str, ...] | None = None

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "revisions", check_str_list("revisions", self.revisions, none=True))


@dataclass(frozen=True)
class ErrorsConfig(ProfilesConfig):
    """Fig 9: the scan of :class:`ProfilesConfig` and the tokens per block kept in the error sample."""

    sample_per_block: int = 2000

    def __post_init__(self):
        super().__post_init__()
        check_int("sample_per_block", self.sample_per_block, minimum=1)


def gaussian_norm_quantiles(eigenvalues: np.ndarray, q=(0.5, 0.999), draws: int = 200_000, rng=None) -> np.ndarray:
    """Quantiles of ||z|| for z ~ N(0, Sigma), Sigma with the given eigenvalues (Monte Carlo).

    ``||z||^2 = sum_k lambda_k chi^2_1``; the reference tail of Fig 9.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    lam = np.clip(np.asarray(eigenvalues, dtype=np.float64), 0, None)
    sq = np.zeros(draws)
    for start in range(0, draws, 20_000):  # bounded memory for wide models
        z = rng.standard_normal((min(20_000, draws - start), lam.size))
        sq[start:start + len(z)] = (z**2) @ lam
    return np.sqrt(np.quantile(sq, q))


def scan_table(cfg: ScanConfig, *, profile: str, force: bool = False, cache_only: bool = False,
               progress: bool = True) -> pd.DataFrame | None:
    """The per-block linearity table of one model (:func:`lin_utils.scan.scan_blocks`), cached.

    Keyed by ``cfg`` alone, so any figure with the same scan parameters reuses it. With
    ``cache_only`` nothing is computed: a missing table gives None.
    """
    if cache_only:
        return results.load_table(SCAN, "blocks", cfg.key(), profile)
    return results.cached(SCAN, "blocks", cfg.key(), lambda: scan_blocks(cfg, progress=progress)[0],
                          profile=profile, force=force)


def linearity_profiles(models: Sequence[str], scan: Mapping, *, profile: str, force: bool = False,
                       cache_only: bool = False, progress: bool = True) -> pd.DataFrame | None:
    """Figs 1 and 3: per-block linearity (with and without residual), held-out R², cosine, norms.

    Args:
        models: model specs, in the order the figures list them.
        scan: :class:`ScanConfig` fields shared by every model (other keys are ignored).

    Returns:
        One row per (model, block): ``model``, ``arch``, ``trained``, ``n_blocks``, the columns of
        :meth:`lin_utils.linearity.LinearityAccumulator.result`, and ``depth`` = block /
        (n_blocks - 1). None with ``cache_only`` when a model's table is missing.
    """
    frames = [scan_table(ScanConfig.from_params(m, scan), profile=profile, force=force,
                         cache_only=cache_only, progress=progress) for m in models]
    if any(f is None for f in frames):
        return None
    return pd.concat(frames, ignore_index=True)


def _token_error_tables(cfg: ScanConfig, sample_per_block: int, progress: bool) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(cfg.seed)
    model, _, chunks = load_scan_inputs(cfg)
    total = chunks.n_batches(cfg.batch_size)
    _, acc = scan_blocks(cfg, progress=progress, model=model, chunks=chunks)
    scores = acc.result().set_index("block")
    maps = acc.fitted_maps()
    # in the errors' unit (rms_y of the block's target), so that the reference can be drawn next to them
    gauss = {i: gaussian_norm_quantiles(np.linalg.eigvalsh(c), rng=rng) / maps[i].rms_y
             for i, c in acc.residual_covariance().items()}
    errors = token_errors(model, chunks.batches(cfg.batch_size), maps, exclude_bos=cfg.exclude_bos,
                          device=cfg.device, progress=progress, total=total)
    info = describe_model(cfg.model, model)
    summaries, samples = [], []
    for block, grp in errors.groupby("block"):
        e = grp.error.to_numpy()
        pos = grp.position.to_numpy()
        q = np.quantile(e, [0.5, 0.9, 0.99, 0.999])
        g50, g999 = gauss[block]
        summaries.append(dict(
            **info, block=block, n_tokens=len(e), d=int(scores.loc[block, "d"]),
            score=float(scores.loc[block, "score"]), mean_sq_error=float(np.mean(e**2)),
            median=q[0], p90=q[1], p99=q[2], p999=q[3], max=float(e.max()),
            tail_ratio=q[3] / q[0], gauss_median=g50, gauss_p999=g999, gauss_tail_ratio=g999 / g50,
            excess_tail=(q[3] / q[0]) / (g999 / g50),
            bos_median=float(np.median(e[pos == 0])) if (pos == 0).any() else math.nan,
        ))
        take = np.sort(rng.choice(len(grp), size=min(sample_per_block, len(grp)), replace=False))
        samples.append(pd.DataFrame({"model": cfg.model, "arch": info["arch"], "trained": info["trained"],
                                     "block": block, "position": pos[take], "is_bos": pos[take] == 0,
                                     "error": e[take]}))
    return {"summary": pd.DataFrame(summaries), "sample": pd.concat(samples, ignore_index=True)}


def token_error_tables(cfg: ScanConfig, sample_per_block: int, *, profile: str, force: bool = False,
                       cache_only: bool = False, progress: bool = True) -> dict[str, pd.DataFrame] | None:
    """Fig 9 for one model: per-token relative L2 error of each block's least-squares map, cached.

    Pass 1 fits the map of every block on all tokens; pass 2 measures each token's error
    ``||y_hat - y|| / rms_y`` (so the mean squared error equals 1 - R²). BOS (position 0) is
    flagged in ``is_bos``. The tail is compared with Gaussian errors of the fitted map's
    residual covariance (Monte Carlo, seeded by ``cfg.seed``), in the same unit as the errors.

    Returns:
        ``{"summary": one row per block with quantiles over all tokens and the Gaussian reference,
           "sample": a uniform random sample of at most ``sample_per_block`` tokens per block}``.
    """
    params = {**cfg.key(), "sample_per_block": sample_per_block, "version": ERRORS_VERSION}
    if cache_only:
        tables = {t: results.load_table(ERRORS, t, params, profile) for t in ("summary", "sample")}
        return None if any(v is None for v in tables.values()) else tables
    return results.cached_tables(ERRORS, ["summary", "sample"], params,
                                 lambda: _token_error_tables(cfg, sample_per_block, progress),
                                 profile=profile, force=force)


def token_error_distribution(models: Sequence[str], scan: Mapping, *, sample_per_block: int = 2000,
                             profile: str, force: bool = False, cache_only: bool = False,
                             progress: bool = True) -> dict[str, pd.DataFrame] | None:
    """Fig 9 over several models: :func:`token_error_tables` of each, concatenated."""
    per_model = [token_error_tables(ScanConfig.from_params(m, scan), sample_per_block, profile=profile,
                                    force=force, cache_only=cache_only, progress=progress) for m in models]
    if any(t is None for t in per_model):
        return None
    return {name: pd.concat([t[name] for t in per_model], ignore_index=True) for name in ("summary", "sample")}
