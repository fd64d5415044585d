"""Linearity scores between consecutive residual-stream states.

The paper's score for a block mapping states X (n x d) to Y (n x d):

    center X and Y, divide each by its Frobenius norm, then
    score = 1 - min_A ||X A - Y||_F^2

which is the multivariate R^2 of the least-squares fit of Y on X:
``1 - SSE / ||Y - mean(Y)||_F^2``. The variant "without residual" scores
Y' = Y - X on X. Since X lies in the span of the regressors, min_A ||X A - (Y - X)||
is the same minimum as for Y, so the two variants share the residual sum of squares
and differ only in the denominator.

Two ways to compute it:

* :func:`linearity_score` - exact, from the data, float64 least squares (pivoted QR).
* :class:`LinearityAccumulator` - streaming, from float64 sufficient statistics
  (token counts, sums, Gram blocks h_i^T h_i and h_i^T h_{i+1}) updated batch by batch and
  mergeable across shards or devices. Both variants, the held-out score, cosine similarity
  and the norms of Fig 3 follow from the same statistics with no second pass.

With n tokens and width d, regressing independent noise already gives R^2 about d/(n-1)
(the chance level). Every result carries n and d; n <= d is refused and n < 10 d warned.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.linalg.blas
import torch

from .errors import LinUtilsError

__all__ = [
    "LinearityAccumulator",
    "LinearityWarning",
    "LinearMap",
    "TooFewTokensError",
    "chance_level",
    "check_token_count",
    "heldout_linearity_score",
    "linearity_score",
    "procrustes_similarity",
]

WARN_RATIO = 10  # warn when n < WARN_RATIO * d
PRECISIONS = ("float64", "mixed")  # Gram precision of LinearityAccumulator
# Singular values of X below RCOND times the largest count as zero: about the rounding level of
# float32 activations. Exact and streaming solvers use the same cut-off.
RCOND = 1e-6


class LinearityWarning(UserWarning):
    """A score computed from too few tokens for its width to be far from chance."""


class TooFewTokensError(LinUtilsError, ValueError):
    """n <= d: the least-squares fit interpolates and the score is meaningless."""


def chance_level(n: int, d: int) -> float:
    """Expected in-sample R^2 of a least-squares fit (with intercept) to independent noise.

    For Y independent of X (n tokens, d regressors), E[R^2] = d / (n - 1).
    """
    return d / (n - 1)


def check_token_count(n: int, d: int, where: str, *, warn: bool = True) -> str | None:
    """Refuse n <= d; return a warning text when n < 10 d (also emitted as a warning if ``warn``)."""
    if n <= d:
        raise TooFewTokensError(
            f"{where}: n_tokens={n} <= d={d}; a linear map fits any data exactly. "
            f"Use more tokens (at least {WARN_RATIO * d} recommended)."
        )
    if n < WARN_RATIO * d:
        msg = f"{where}: n_tokens={n} < {WARN_RATIO}*d={WARN_RATIO * d}; chance level d/(n-1)={d / (n - 1):.3f}"
        if warn:
            warnings.warn(msg, LinearityWarning, stacklevel=3)
        return msg
    return None


def _as_f64(a, name: str) -> np.ndarray:
    """2-D float64 numpy copy of a tensor or array; half precision is upcast."""
    if isinstance(a, torch.Tensor):
        a = a.detach().to("cpu", torch.float64).numpy()
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_tokens, d), got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or Inf")
    return a


def _centered_normalized(X, Y) -> tuple[np.ndarray, np.ndarray]:
    X, Y = _as_f64(X, "X"), _as_f64(Y, "Y")
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"X and Y must have the same number of rows, got {X.shape[0]} and {Y.shape[0]}")
    X = X - X.mean(0)
    Y = Y - Y.mean(0)
    nx, ny = np.linalg.norm(X), np.linalg.norm(Y)
    if nx == 0 or ny == 0:
        raise ValueError("X or Y is constant across tokens; the score is undefined")
    return X / nx, Y / ny


def linearity_score(X, Y) -> float:
    """Exact linearity score (paper eq. 1) in float64.

    Args:
        X: (n, d_x) states before the block; tensor or array, any float dtype.
        Y: (n, d_y) states after the block.

    Returns:
        ``1 - min_A ||X~ A - Y~||_F^2`` with X~, Y~ centered and Frobenius-normalized,
        solved by QR least squares with column pivoting (LAPACK gelsy) with singular values below
        ``RCOND`` times the largest treated as zero; never an explicit inverse.
    """
    Xn, Yn = _centered_normalized(X, Y)
    check_token_count(Xn.shape[0], Xn.shape[1], "linearity_score")
    A, *_ = scipy.linalg.lstsq(Xn, Yn, cond=RCOND, lapack_driver="gelsy")
    return float(1.0 - np.sum((Xn @ A - Yn) ** 2))


def heldout_linearity_score(X_fit, Y_fit, X_test, Y_test) -> float:
    """R^2 on test tokens of the affine least-squares map fitted on other tokens.

    The map (with intercept) is fitted on ``(X_fit, Y_fit)`` and scored as
    ``1 - SSE_test / ||Y_test - mean(Y_test)||^2``. Unlike the in-sample score it is not
    inflated by fitting noise: independent data scores about 0 (slightly below).
    """
    Xf, Yf, Xt, Yt = (_as_f64(a, n) for a, n in ((X_fit, "X_fit"), (Y_fit, "Y_fit"), (X_test, "X_test"), (Y_test, "Y_test")))
    check_token_count(Xf.shape[0], Xf.shape[1], "heldout_linearity_score")
    mx, my = Xf.mean(0), Yf.mean(0)
    A, *_ = scipy.linalg.lstsq(Xf - mx, Yf - my, cond=RCOND, lapack_driver="gelsy")
    sse = np.sum(((Xt - mx) @ A + my - Yt) ** 2)
    return float(1.0 - sse / np.sum((Yt - Yt.mean(0)) ** 2))


def procrustes_similarity(X, Y) -> float:
    """Orthogonal Procrustes similarity, for comparison with the linear score.

    With X~, Y~ centered and Frobenius-normalized, ``max_R <X~ R, Y~>`` over (semi-)orthogonal R
    equals the nuclear norm of X~^T Y~, a number in [0, 1]; 1 means Y is a rotation of X up to scale.
    """
    Xn, Yn = _centered_normalized(X, Y)
    return float(np.linalg.svd(Xn.T @ Yn, compute_uv=False).sum())


def _solve_psd(G: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Least-squares coefficients from a centered Gram matrix: solve G A = B, G = X^T X (d, d).

    Cholesky when G is comfortably positive definite. Otherwise an eigendecomposition that treats
    directions with eigenvalue below ``RCOND**2`` of the largest as null: these are directions in
    which X has no variance beyond rounding, e.g. the hyperplane that LayerNorm outputs lie in.
    Fitting them would multiply rounding noise by ~1e8 and ruin held-out predictions.
    """
    scale = float(np.max(np.diag(G))) if G.size else 0.0
    if scale <= 0:
        return np.zeros_like(B)
    # torch's LAPACK is several times faster than scipy's here for d ~ 10^3.
    L, info = torch.linalg.cholesky_ex(torch.from_numpy(G))
    if info == 0 and float(torch.diagonal(L).min()) ** 2 > RCOND**2 * scale * 1e2:
        return torch.cholesky_solve(torch.from_numpy(np.ascontiguousarray(B)), L).numpy()
    w, V = np.linalg.eigh(G)
    keep = w > RCOND**2 * w[-1]
    return V[:, keep] @ ((V[:, keep].T @ B) / w[keep, None])


def _nuclear_norm(M: np.ndarray) -> float:
    """Sum of singular values, from the eigenvalues of M^T M (a few times faster than an SVD)."""
    return float(np.sqrt(np.clip(np.linalg.eigvalsh(M.T @ M), 0, None)).sum())


@dataclass
class LinearMap:
    """An affine map fitted to one block: ``y_hat = (x - mu_x) @ A + mu_y``.

    Attributes:
        A: (d, d) float64.
        mu_x, mu_y: (d,) float64 token means of the fit.
        rms_y: sqrt(mean_t ||y_t - mu_y||^2) over the fitted tokens; the unit of
            :meth:`relative_error`, so that mean(relative_error^2) = 1 - R^2 in-sample.
    """

    A: np.ndarray
    mu_x: np.ndarray
    mu_y: np.ndarray
    rms_y: float

    def predict(self, X) -> np.ndarray:
        """(n, d) -> (n, d) float64."""
        return (_as_f64(X, "X") - self.mu_x) @ self.A + self.mu_y

    def relative_error(self, X, Y) -> np.ndarray:
        """Per-token L2 error ``||y_hat_t - y_t|| / rms_y``, shape (n,)."""
        return np.linalg.norm(self.predict(X) - _as_f64(Y, "Y"), axis=1) / self.rms_y


class _Moments:
    """Float64 sufficient statistics of one token subset (one half of the held-out split)."""

    def __init__(self):
        self.n = 0
        self.s: dict[int, np.ndarray] = {}  # boundary -> sum_t h_t, (d,)
        self.G: dict[int, np.ndarray] = {}  # boundary -> sum_t h_t h_t^T, (d, d)
        self.C: dict[int, np.ndarray] = {}  # block i -> sum_t h_i,t h_{i+1},t^T, (d, d)

    def add(self, other: "_Moments") -> None:
        self.n += other.n
        for mine, theirs in ((self.s, other.s), (self.G, other.G), (self.C, other.C)):
            for k, v in theirs.items():
                _acc(mine, k, v)

    def numpy(self) -> "_Moments":
        """A float64 numpy copy (statistics stay on the states' device while streaming)."""
        out = _Moments()
        out.n = self.n
        for mine, theirs in ((out.s, self.s), (out.G, self.G), (out.C, self.C)):
            for k, v in theirs.items():
                mine[k] = v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.array(v)
        return out

    def plus(self, other: "_Moments") -> "_Moments":
        """A new _Moments holding the sum of two numpy-backed ones (see :meth:`numpy`)."""
        out = _Moments()
        out.n = self.n + other.n
        for res, a, b in ((out.s, self.s, other.s), (out.G, self.G, other.G), (out.C, self.C, other.C)):
            for k in a.keys() | b.keys():
                res[k] = a.get(k, 0) + b.get(k, 0)
        return out

    def centered(self, i: int) -> tuple[np.ndarray, np.ndarray, float, float, float]:
        """Centered (Gxx, Gxy, tr Gyy, tr Gxx, tr Gxy) for block i (boundary i -> i+1)."""
        n = self.n
        mx, my = self.s[i] / n, self.s[i + 1] / n
        Gxx = self.G[i] - n * np.outer(mx, mx)
        Gxy = self.C[i] - n * np.outer(mx, my)
        tyy = np.trace(self.G[i + 1]) - n * my @ my
        return Gxx, Gxy, float(tyy), float(np.trace(Gxx)), float(np.trace(Gxy))


class LinearityAccumulator:
    """Streaming linearity scores for every block, from mergeable float64 statistics.

    Call :meth:`update` with each batch's states at block boundaries (boundary i is the
    input of block i, boundary i+1 its output; see :mod:`lin_utils.extract`) and a token
    mask; :meth:`merge` adds another accumulator (another shard, process or device);
    :meth:`result` returns one row per block.

    For the held-out score, whole sequences alternate between two halves (row 0 of the first
    batch to half 0, row 1 to half 1, ...). Each half's map is scored on the other half
    (2-fold cross-validation) and the errors are pooled.

    Memory is O(L d^2) and does not grow with the number of tokens.
    """

    def __init__(self, blocks: Iterable[int] | None = None, precision: str = "float64"):
        """``blocks``: score only these blocks (default: every block whose two boundaries are seen)."""
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.precision = precision
        self.only = None if blocks is None else set(blocks)
        self.halves = (_Moments(), _Moments())
        self.boundaries: list[int] | None = None
        self._rows = 0
        # Per-token statistics that need no split (sums over all counted tokens).
        self.norm_sum: dict[int, float] = {}  # boundary -> sum ||h||
        self.delta_norm_sum: dict[int, float] = {}  # block -> sum ||h_{i+1} - h_i||
        self.cos_sum: dict[int, float] = {}  # block -> sum cos(h_i, h_{i+1})
        self.dim: int | None = None

    @property
    def n_tokens(self) -> int:
        return self.halves[0].n + self.halves[1].n

    @property
    def nbytes(self) -> int:
        """Memory held by the statistics: O(L d^2), whatever the number of tokens."""
        return sum(v.numel() * v.element_size() if isinstance(v, torch.Tensor) else v.nbytes
                   for h in self.halves for store in (h.s, h.G, h.C) for v in store.values())

    @property
    def blocks(self) -> list[int]:
        """Blocks whose input and output boundaries were both seen."""
        b = set(self.boundaries or [])
        return [i for i in sorted(b) if i + 1 in b and (self.only is None or i in self.only)]

    def update(self, states: Mapping[int, torch.Tensor] | Sequence[torch.Tensor], mask: torch.Tensor | None = None) -> "LinearityAccumulator":
        """Add one batch.

        Args:
            states: boundary index -> (B, T, d) tensor, or a sequence indexed by boundary.
                Any float dtype (half precision is upcast); every boundary the same shape.
            mask: (B, T) bool/0-1, True for tokens to count (padding and, if wanted, BOS False).
                ``None`` counts every token.
        """
        if not isinstance(states, Mapping):
            states = dict(enumerate(states))
        keys = sorted(states)
        if not keys:
            raise ValueError("states is empty")
        if self.boundaries is None:
            self.boundaries = keys
        elif keys != self.boundaries:
            raise ValueError(f"states has boundaries {keys}, but this accumulator was started with {self.boundaries}")
        first = states[keys[0]]
        if first.ndim != 3:
            raise ValueError(f"states must be (B, T, d) tensors, got shape {tuple(first.shape)}")
        B, T, d = first.shape
        if self.dim is None:
            self.dim = d
        if mask is None:
            mask = torch.ones(B, T, dtype=torch.bool, device=first.device)
        mask = mask.to(first.device).bool()
        if mask.shape != (B, T):
            raise ValueError(f"mask must have shape {(B, T)}, got {tuple(mask.shape)}")
        for b in keys:
            if tuple(states[b].shape) != (B, T, self.dim):
                raise ValueError(f"boundary {b}: expected shape {(B, T, self.dim)}, got {tuple(states[b].shape)}")

        half_of_row = (torch.arange(B, device=first.device) + self._rows) % 2
        self._rows += B
        # Flat indices of the counted tokens of each half, shared by every boundary.
        half_idx = [torch.nonzero((mask & (half_of_row == h)[:, None]).reshape(-1)).squeeze(1) for h in (0, 1)]
        for h, idx in enumerate(half_idx):
            self.halves[h].n += int(idx.numel())

        # Per half: float64 (n_h, d) tokens of the previous boundary and their norms.
        prev: list = [None, None]
        prev_norm: list = [None, None]
        for b in keys:
            have_prev = prev[0] is not None and (b - 1) in states and (self.only is None or b - 1 in self.only)
            flat = states[b].reshape(B * T, self.dim)
            for h, idx in enumerate(half_idx):
                x = flat.index_select(0, idx).to(torch.float64)
                if not torch.isfinite(x).all():
                    raise ValueError(f"boundary {b} (input of block {b}, output of block {b - 1}) contains NaN or Inf")
                norm = x.norm(dim=1)
                self.norm_sum[b] = self.norm_sum.get(b, 0.0) + float(norm.sum())
                mom = self.halves[h]
                _acc(mom.s, b, x.sum(0))
                _acc(mom.G, b, _gram(x))
                if have_prev:
                    _acc(mom.C, b - 1, prev[h].T @ x)
                    delta = float((x - prev[h]).norm(dim=1).sum())
                    cos = float(((prev[h] * x).sum(1) / (prev_norm[h] * norm).clamp_min(1e-12)).sum())
                    self.delta_norm_sum[b - 1] = self.delta_norm_sum.get(b - 1, 0.0) + delta
                    self.cos_sum[b - 1] = self.cos_sum.get(b - 1, 0.0) + cos
                prev[h], prev_norm[h] = x, norm
        return self

    def merge(self, other: "LinearityAccumulator") -> "LinearityAccumulator":
        """Add another accumulator's statistics into this one (in place); returns self."""
        if other.boundaries is None:
            return self
        if self.boundaries is None:
            self.boundaries, self.dim, self.only = list(other.boundaries), other.dim, other.only
        elif other.boundaries != self.boundaries or other.dim != self.dim:
            raise ValueError("cannot merge accumulators over different boundaries or widths")
        for mine, theirs in zip(self.halves, other.halves):
            mine.add(theirs)
        for mine, theirs in ((self.norm_sum, other.norm_sum), (self.delta_norm_sum, other.delta_norm_sum), (self.cos_sum, other.cos_sum)):
            for k, v in theirs.items():
                mine[k] = mine.get(k, 0.0) + v
        self._rows += other._rows
        return self

    def all_reduce(self, group=None) -> "LinearityAccumulator":
        """Sum the statistics over every rank of a ``torch.distributed`` group, in place.

        Each rank streams its own shard of the tokens (e.g. under ``torchrun`` or ``accelerate``),
        then every rank calls this; afterwards each holds the statistics of all tokens and
        :meth:`result` gives the same table everywhere. All ranks must have scored the same
        boundaries. One ``all_reduce`` of a flat float64 buffer (gloo or NCCL).
        """
        import torch.distributed as dist

        if self.boundaries is None:
            raise ValueError("all_reduce before any update(): every rank must score at least one batch")
        parts = []  # (dict, key) slots in a fixed order shared by every rank
        for h in self.halves:
            parts += [(h.s, b) for b in sorted(h.s)] + [(h.G, b) for b in sorted(h.G)] + [(h.C, b) for b in sorted(h.C)]
        ref = parts[0][0][parts[0][1]]
        scalars = [self.halves[0].n, self.halves[1].n, self._rows]
        scalars += [self.norm_sum[k] for k in sorted(self.norm_sum)]
        scalars += [self.delta_norm_sum[k] for k in sorted(self.delta_norm_sum)]
        scalars += [self.cos_sum[k] for k in sorted(self.cos_sum)]
        flat = torch.cat([torch.tensor(scalars, dtype=torch.float64, device=ref.device)]
                         + [store[k].reshape(-1).to(ref.device) for store, k in parts])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM, group=group)
        it = iter(flat[: len(scalars)].tolist())
        self.halves[0].n, self.halves[1].n, self._rows = (int(round(next(it))) for _ in range(3))
        for store in (self.norm_sum, self.delta_norm_sum, self.cos_sum):
            for k in sorted(store):
                store[k] = next(it)
        offset = len(scalars)
        for store, k in parts:
            size = store[k].numel()
            store[k] = flat[offset: offset + size].reshape(store[k].shape).to(store[k].device)
            offset += size
        return self

    def _numpy_halves(self) -> list[_Moments]:
        return [h.numpy() for h in self.halves]

    def _total(self, halves: list[_Moments] | None = None) -> _Moments:
        """Statistics of all counted tokens, as numpy (pass ``halves`` to reuse a conversion)."""
        a, b = halves if halves is not None else self._numpy_halves()
        return a.plus(b)

    def fitted_maps(self) -> dict[int, LinearMap]:
        """The least-squares affine map of every block, fitted on all counted tokens."""
        total = self._total()
        maps = {}
        check_token_count(total.n, self.dim, f"blocks {self.blocks}")
        for i in self.blocks:
            Gxx, Gxy, tyy, _, _ = total.centered(i)
            maps[i] = LinearMap(
                A=_solve_psd(Gxx, Gxy),
                mu_x=total.s[i] / total.n,
                mu_y=total.s[i + 1] / total.n,
                rms_y=math.sqrt(tyy / total.n),
            )
        return maps

    def residual_covariance(self) -> dict[int, np.ndarray]:
        """Covariance of the fitted map's residuals y - y_hat per block, (d, d) float64.

        ``(Gyy - Gxy^T A) / n`` on centered statistics: the reference for asking whether the
        per-token errors are heavier-tailed than Gaussian errors of the same covariance.
        """
        total = self._total()
        out = {}
        for i in self.blocks:
            Gxx, Gxy, _, _, _ = total.centered(i)
            my = total.s[i + 1] / total.n
            Gyy = total.G[i + 1] - total.n * np.outer(my, my)
            R = Gyy - Gxy.T @ _solve_psd(Gxx, Gxy)
            out[i] = (R + R.T) / (2 * total.n)
        return out

    def result(self) -> pd.DataFrame:
        """One row per block ``i`` (boundary i -> i+1).

        Columns:
            block, n_tokens, d, chance (= d/(n-1)),
            score / score_nores: in-sample linearity with and without the residual,
            heldout / heldout_nores: 2-fold held-out R^2 (NaN when a half has n <= d),
            procrustes: orthogonal Procrustes similarity,
            cosine: mean cos(h_i, h_{i+1}) over tokens,
            norm_resid: mean ||h_i||, norm_block: mean ||h_{i+1} - h_i||, norm_ratio,
            note: a warning text when n < 10 d.
        """
        if not self.blocks:
            raise ValueError("no block has both its input and output boundary; call update() first")
        halves = self._numpy_halves()
        total, n, d = self._total(halves), self.n_tokens, self.dim
        rows = []
        note = check_token_count(n, d, f"blocks {self.blocks}")
        for i in self.blocks:
            Gxx, Gxy, tyy, txx, txy = total.centered(i)
            A = _solve_psd(Gxx, Gxy)
            sse = max(tyy - float(np.sum(Gxy * A)), 0.0)
            sst_nores = tyy - 2 * txy + txx
            cross = Gxy / math.sqrt(txx * tyy)
            held, held_nores = self._heldout(i, halves)
            rows.append(
                dict(
                    block=i,
                    n_tokens=n,
                    d=d,
                    chance=chance_level(n, d),
                    score=1 - sse / tyy,
                    score_nores=1 - sse / sst_nores,
                    heldout=held,
                    heldout_nores=held_nores,
                    procrustes=_nuclear_norm(cross),
                    cosine=self.cos_sum[i] / n,
                    norm_resid=self.norm_sum[i] / n,
                    norm_block=self.delta_norm_sum[i] / n,
                    norm_ratio=self.delta_norm_sum[i] / self.norm_sum[i],
                    note=note or "",
                )
            )
        return pd.DataFrame(rows)

    def _heldout(self, i: int, halves: list[_Moments]) -> tuple[float, float]:
        """Pooled 2-fold held-out R^2 of block i, with and without the residual."""
        if min(h.n for h in halves) <= self.dim:
            return math.nan, math.nan
        sse = sst = sst_nores = 0.0
        for fit, test in ((halves[0], halves[1]), (halves[1], halves[0])):
            Gxx_f, Gxy_f, _, _, _ = fit.centered(i)
            A = _solve_psd(Gxx_f, Gxy_f)
            mx, my = fit.s[i] / fit.n, fit.s[i + 1] / fit.n
            # Test statistics re-centered on the *fit* means: X~ = X_t - mx, Y~ = Y_t - my.
            nt, sx, sy = test.n, test.s[i], test.s[i + 1]
            Gxx = test.G[i] - np.outer(sx, mx) - np.outer(mx, sx) + nt * np.outer(mx, mx)
            Gxy = test.C[i] - np.outer(sx, my) - np.outer(mx, sy) + nt * np.outer(mx, my)
            tyy = np.trace(test.G[i + 1]) - 2 * sy @ my + nt * my @ my
            sse += float(tyy - 2 * np.sum(A * Gxy) + np.sum(A * (Gxx @ A)))
            _, _, tyy_c, txx_c, txy_c = test.centered(i)
            sst += tyy_c
            sst_nores += tyy_c - 2 * txy_c + txx_c
        return 1 - sse / sst, 1 - sse / sst_nores


def _gram(x: torch.Tensor) -> torch.Tensor:
    """x^T x for (n, d) float64 x. On the CPU, BLAS syrk computes one triangle: half the flops."""
    if x.device.type != "cpu":
        return x.T @ x
    upper = scipy.linalg.blas.dsyrk(1.0, x.numpy().T, trans=0)  # x.numpy().T is Fortran-ordered: no copy
    return torch.from_numpy(upper + np.triu(upper, 1).T)


def _acc(store: dict, key: int, value: torch.Tensor) -> None:
    """store[key] += value, keeping the first value's device (shards may come from other devices)."""
    if key in store:
        store[key] += value.to(store[key].device)
    else:
        store[key] = value.clone()
