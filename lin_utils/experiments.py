"""The computations behind the book's figures. Each returns tidy pandas tables.

Notebooks call these through :func:`lin_utils.results.cached`, so a re-run with the same
parameters loads the stored table instead of recomputing.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from .data import text_chunks
from .linearity import profile_model, token_errors
from .models import is_encoder, load_model, n_blocks

__all__ = ["describe_model", "gaussian_norm_quantiles", "linearity_profiles", "token_error_distribution"]


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


def describe_model(spec: str, model) -> dict:
    """Labels for plots: kind (trained decoder / encoder / random init), blocks, width."""
    trained = not spec.startswith("random:")
    arch = "encoder" if is_encoder(model) else "decoder"
    return dict(model=spec, kind=f"{arch}, {'trained' if trained else 'random init'}", n_blocks=n_blocks(model))


def _model_and_chunks(spec, *, dataset, split, seq_len, max_tokens, dtype, device, seed):
    """Load ``spec`` and cut the corpus into BOS-led chunks no longer than its context."""
    model, tokenizer = load_model(spec, dtype=getattr(torch, dtype), device=device, seed=seed)
    limit = getattr(model.config, "max_position_embeddings", None) or seq_len
    chunks = text_chunks(dataset, split, tokenizer, min(seq_len, limit), max_tokens=max_tokens, add_bos=True)
    return model, chunks


def linearity_profiles(
    models: Sequence[str],
    *,
    dataset: str = "tinystories",
    split: str = "validation",
    max_tokens: int = 16384,
    seq_len: int = 256,
    batch_size: int = 8,
    exclude_bos: bool = True,
    dtype: str = "float32",
    device: str = "cpu",
    seed: int = 0,
    progress: bool = True,
) -> pd.DataFrame:
    """Per-block linearity (with and without residual), held-out R^2, cosine and norms.

    Every chunk starts with BOS (``exclude_bos`` then drops it from the statistics).

    Returns:
        One row per (model, block): the columns of
        :meth:`lin_utils.linearity.LinearityAccumulator.result` plus ``model``, ``kind``,
        ``n_blocks`` and ``depth`` = block / (n_blocks - 1) in [0, 1].
    """
    frames = []
    for spec in models:
        model, chunks = _model_and_chunks(spec, dataset=dataset, split=split, seq_len=seq_len, max_tokens=max_tokens,
                                          dtype=dtype, device=device, seed=seed)
        acc = profile_model(
            model, chunks.batches(batch_size), exclude_bos=exclude_bos, device=device,
            progress=progress, total=chunks.n_batches(batch_size),
        )
        df = acc.result()
        info = describe_model(spec, model)
        for k, v in reversed(info.items()):
            df.insert(0, k, v)
        df["depth"] = df.block / max(info["n_blocks"] - 1, 1)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def token_error_distribution(
    models: Sequence[str],
    *,
    dataset: str = "tinystories",
    split: str = "validation",
    max_tokens: int = 16384,
    seq_len: int = 256,
    batch_size: int = 8,
    exclude_bos: bool = False,
    sample_per_block: int = 4000,
    dtype: str = "float32",
    device: str = "cpu",
    seed: int = 0,
    progress: bool = True,
) -> dict[str, pd.DataFrame]:
    """Fig 9: per-token relative L2 error of each block's least-squares linear map.

    Pass 1 fits the map of every block on all tokens; pass 2 measures each token's error
    ``||y_hat - y|| / rms_y`` (so the mean squared error equals 1 - R^2). BOS (position 0)
    is kept by default so that its outlier errors are visible; it is flagged in ``is_bos``.

    Returns:
        ``{"summary": one row per (model, block) with quantiles over all tokens,
           "sample": a uniform random sample of at most ``sample_per_block`` tokens per block}``.
    """
    rng = np.random.default_rng(seed)
    summaries, samples = [], []
    for spec in models:
        model, chunks = _model_and_chunks(spec, dataset=dataset, split=split, seq_len=seq_len, max_tokens=max_tokens,
                                          dtype=dtype, device=device, seed=seed)
        total = chunks.n_batches(batch_size)
        acc = profile_model(model, chunks.batches(batch_size), exclude_bos=exclude_bos, device=device, progress=progress, total=total)
        scores = acc.result().set_index("block")
        gauss = {i: gaussian_norm_quantiles(np.linalg.eigvalsh(c), rng=rng) for i, c in acc.residual_covariance().items()}
        errors = token_errors(model, chunks.batches(batch_size), acc.fitted_maps(), exclude_bos=exclude_bos, device=device, progress=progress, total=total)
        info = describe_model(spec, model)
        for block, grp in errors.groupby("block"):
            e = grp.error.to_numpy()
            q = np.quantile(e, [0.5, 0.9, 0.99, 0.999])
            summaries.append(dict(
                **info, block=block, n_tokens=len(e), d=int(scores.loc[block, "d"]),
                score=float(scores.loc[block, "score"]), mean_sq_error=float(np.mean(e**2)),
                median=q[0], p90=q[1], p99=q[2], p999=q[3], max=float(e.max()),
                tail_ratio=q[3] / q[0], gauss_tail_ratio=gauss[block][1] / gauss[block][0],
                excess_tail=(q[3] / q[0]) / (gauss[block][1] / gauss[block][0]), bos_median=float(np.median(e[grp.position.to_numpy() == 0])) if (grp.position == 0).any() else math.nan,
            ))
            take = rng.choice(len(grp), size=min(sample_per_block, len(grp)), replace=False)
            s = grp.iloc[np.sort(take)]
            samples.append(pd.DataFrame({"model": spec, "kind": info["kind"], "block": block, "position": s.position.to_numpy(),
                                         "is_bos": s.position.to_numpy() == 0, "error": s.error.to_numpy()}))
    return {"summary": pd.DataFrame(summaries), "sample": pd.concat(samples, ignore_index=True)}
