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
  and the norms of Fig 3 follow from the same statistics with no second pass. Its
  ``precision="mixed"`` forms each batch's products in float32 (see the class) and agrees with
  float64 to about 1e-7.

With n tokens and width d, regressing independent noise already gives R^2 about d/(n-1)
(the chance level). Every result carries n and d; n <= d is refused and n < 10 d warned.
"""
from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.linalg
import torch
import torch.distributed as dist

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
    with _one_blas_thread():
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
    with _one_blas_thread():
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


class _PSD:
    """A centered Gram matrix G = X^T X (d, d, float64, any device), factored once for least squares.

    Cholesky when G is comfortably positive definite. Otherwise an eigendecomposition that treats
    directions with eigenvalue below ``RCOND**2`` of the largest as null: these are directions in
    which X has no variance beyond rounding, e.g. the hyperplane that LayerNorm outputs lie in.
    Fitting them would multiply rounding noise by ~1e8 and ruin held-out predictions.
    """

    def __init__(self, G: torch.Tensor):
        self.L = self.V = self.w = None
        scale = float(G.diagonal().max()) if G.numel() else 0.0
        self.zero = scale <= 0
        if self.zero:
            return
        # torch's LAPACK is several times faster than scipy's here for d ~ 10^3.
        L, info = torch.linalg.cholesky_ex(G)
        if int(info) == 0 and float(L.diagonal().min()) ** 2 > RCOND**2 * scale * 1e2:
            self.L = L
            return
        w, V = _eigh(G)
        keep = w > RCOND**2 * w[-1]
        self.V, self.w = V[:, keep], w[keep]

    def solve(self, B: torch.Tensor) -> torch.Tensor:
        """G^+ B: the least-squares coefficients when B = X^T Y."""
        if self.zero:
            return torch.zeros_like(B)
        if self.L is not None:
            return torch.cholesky_solve(B, self.L)
        return self.V @ ((self.V.T @ B) / self.w[:, None])

    def explained(self, B: torch.Tensor) -> float:
        """<B, G^+ B>: the sum of squares the fit explains when B = X^T Y (one triangular solve)."""
        if self.zero:
            return 0.0
        if self.L is not None:
            Z = torch.linalg.solve_triangular(self.L, B, upper=False)
            return float((Z * Z).sum())
        Z = self.V.T @ B
        return float((Z * Z / self.w[:, None]).sum())


def _solve_psd(G: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """Least-squares coefficients from a centered Gram matrix: solve G A = B (see :class:`_PSD`)."""
    return _PSD(G).solve(B)


def _eigh(S: torch.Tensor, vectors: bool = True):
    """Eigenvalues (ascending) and, if ``vectors``, eigenvectors of a symmetric float64 matrix.

    On a CPU through numpy with one BLAS thread: several times faster than torch's there, and one
    thread beats several for the (memory-bound) tridiagonal reduction at d ~ 10^3 (on a busy
    2-core machine, d=768: 1.8 s with two threads, 0.1 s with one).
    """
    if S.device.type != "cpu":
        return torch.linalg.eigh(S) if vectors else torch.linalg.eigvalsh(S)
    with _one_blas_thread():
        out = np.linalg.eigh(S.numpy()) if vectors else np.linalg.eigvalsh(S.numpy())
    return tuple(torch.from_numpy(a) for a in out) if vectors else torch.from_numpy(out)


def _one_blas_thread():
    """numpy/scipy's BLAS limited to one thread for the duration (LAPACK on d ~ 10^2-10^3
    matrices: level-2 work that several threads slow down badly on a busy machine)."""
    try:
        from threadpoolctl import threadpool_limits  # optional: not our dependency (scikit-learn's), guarded
    except ImportError:  # pragma: no cover - a dependency of scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def _nuclear_norm(M: torch.Tensor) -> float:
    """Sum of singular values, from the eigenvalues of M^T M (a few times faster than an SVD)."""
    return float(_eigh(M.T @ M, vectors=False).clamp_min(0).sqrt().sum())


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
    """Float64 sufficient statistics of one token subset (one half of the held-out split).

    ``n`` counts the tokens; ``stats`` is one dict of named float64 tensors, every statistic of
    every boundary stacked along the first axis:

    * ``"s"`` (K, d): sum_t x_t per boundary,
    * ``"G"`` (K, d, d): sum_t x_t x_t^T per boundary,
    * ``"C"`` (P, d, d): sum_t x_{i,t} x_{i+1,t}^T per scored block i,

    where x = h - ref is the state less the accumulator's per-boundary reference (zero in
    float64 precision). ``row`` maps a boundary to its row of s and G, ``pair`` a block to its
    row of C. Every centered quantity is independent of the reference.
    """

    NAMES = ("s", "G", "C")

    def __init__(self, n: int, stats: dict, row: dict[int, int], pair: dict[int, int]):
        self.n = n
        self.stats = stats
        self.row, self.pair = row, pair

    def sum(self, b: int):
        return self.stats["s"][self.row[b]]

    def gram(self, b: int):
        return self.stats["G"][self.row[b]]

    def cross(self, i: int):
        return self.stats["C"][self.pair[i]]

    def plus(self, other: "_Moments") -> "_Moments":
        """A new _Moments holding the sum of two with the same reference."""
        return _Moments(self.n + other.n, {k: v + other.stats[k] for k, v in self.stats.items()}, self.row, self.pair)

    def centered(self, i: int) -> tuple[torch.Tensor, torch.Tensor, float, float, float]:
        """Centered (Gxx, Gxy, tr Gyy, tr Gxx, tr Gxy) for block i (boundary i -> i+1)."""
        n = self.n
        mx, my = self.sum(i) / n, self.sum(i + 1) / n
        Gxx = torch.addr(self.gram(i), mx, mx, alpha=-n)
        Gxy = torch.addr(self.cross(i), mx, my, alpha=-n)
        tyy = self.gram(i + 1).trace() - n * my @ my
        return Gxx, Gxy, float(tyy), float(Gxx.trace()), float(Gxy.trace())


class LinearityAccumulator:
    """Streaming linearity scores for every block, from mergeable float64 statistics.

    Call :meth:`update` with each batch's states at block boundaries (boundary i is the
    input of block i, boundary i+1 its output; see :mod:`lin_utils.extract`) and a token
    mask; :meth:`merge` adds another accumulator (another shard, process or device);
    :meth:`result` returns one row per block.

    For the held-out score, whole sequences alternate between two halves (row 0 of the first
    batch to half 0, row 1 to half 1, ...). Each half's map is scored on the other half
    (2-fold cross-validation) and the errors are pooled.

    ``precision`` chooses how each batch's Gram products are formed; the statistics are float64
    sums either way and everything after them (solves, scores) is float64:

    * ``"float64"``: the reference. Products of float64 states.
    * ``"mixed"``: float32 products (full IEEE float32, never TF32): updates 1.7-1.8x faster on
      this project's 2-core CPU, and potentially far faster on GPUs with slow float64. Three things keep it within about 1e-7 of float64 on
      every score (see ``tests/test_linearity.py``): the states are shifted by a per-boundary
      reference mean taken from the first batch, so large activation means do not cancel;
      the diagonals of every product (which the traces in the scores are made of) are summed
      in float64 from float32 products; and the cross product of a block is formed as
      x_i^T x_i + x_i^T (x_{i+1} - x_i), so its rounding scales with the block's update rather
      than with the residual stream. Per-token norms and cosines are float32 per token, summed
      in float64 (about 1e-7 relative).

    Memory is O(L d^2) and does not grow with the number of tokens.
    """

    def __init__(self, blocks: Iterable[int] | None = None, precision: str = "float64"):
        """``blocks``: score only these blocks (default: every block whose two boundaries are seen)."""
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.precision = precision
        self.only = None if blocks is None else set(blocks)
        self.boundaries: list[int] | None = None
        self.dim: int | None = None
        self.halves: tuple[_Moments, _Moments] | None = None
        # Per-token sums that need no split, over all counted tokens (float64 tensors):
        # "norm" (K,) sum ||h||; "delta" (P,) sum ||h_{i+1} - h_i||; "cos" (P,) sum cos(h_i, h_{i+1}).
        self.token_sums: dict[str, torch.Tensor] = {}
        self.ref: torch.Tensor | None = None  # (K, d) float64 reference means (mixed); None = 0
        self._rows = 0

    # --- bookkeeping -----------------------------------------------------------------------

    @property
    def n_tokens(self) -> int:
        return 0 if self.halves is None else self.halves[0].n + self.halves[1].n

    @property
    def blocks(self) -> list[int]:
        """Blocks whose input and output boundaries were both seen (and that were asked for)."""
        return [] if self.halves is None else list(self.halves[0].pair)

    def _slots(self) -> list[tuple[dict, str]]:
        """Every summed statistic as (store, name), in one fixed order.

        The one flatten of the statistics: :meth:`merge`, :meth:`all_reduce`, :attr:`nbytes` and
        the reference shift walk this list (token counts are handled beside it).
        """
        slots = [(h.stats, k) for h in self.halves for k in _Moments.NAMES]
        return slots + [(self.token_sums, k) for k in ("norm", "delta", "cos")]

    @property
    def nbytes(self) -> int:
        """Memory held by the statistics: O(L d^2), whatever the number of tokens."""
        if self.halves is None:
            return 0
        extra = [] if self.ref is None else [self.ref]
        return sum(v.numel() * v.element_size() for v in [s[k] for s, k in self._slots()] + extra)

    def _start(self, keys: list[int], d: int, device) -> None:
        """Allocate zero statistics for boundaries ``keys`` of width ``d``."""
        self.boundaries, self.dim = keys, d
        row = {b: k for k, b in enumerate(keys)}
        blocks = [b for b in keys if b + 1 in row and (self.only is None or b in self.only)]
        pair = {i: p for p, i in enumerate(blocks)}
        K, P = len(keys), len(blocks)
        f64 = dict(dtype=torch.float64, device=device)
        self.halves = tuple(
            _Moments(0, {"s": torch.zeros(K, d, **f64), "G": torch.zeros(K, d, d, **f64), "C": torch.zeros(P, d, d, **f64)}, row, pair)
            for _ in range(2)
        )
        self.token_sums = {"norm": torch.zeros(K, **f64), "delta": torch.zeros(P, **f64), "cos": torch.zeros(P, **f64)}

    def _shift(self, new_ref: torch.Tensor | None) -> None:
        """Re-express the statistics around another reference (None = 0), in float64, in place.

        With x' = x + delta (delta = old ref - new ref): s' = s + n delta,
        G' = G + s delta^T + delta s^T + n delta delta^T, and for block i (rows a, b)
        C' = C + s_a delta_b^T + delta_a s_b^T + n delta_a delta_b^T.
        """
        old, new = self.ref, new_ref
        if old is None and new is None:
            return
        if old is not None and new is not None and torch.equal(old, new.to(old.device)):
            return
        device = self.halves[0].stats["s"].device
        if self.n_tokens == 0:  # nothing to re-express
            self.ref = None if new is None else new.to(device)
            return
        zero = torch.zeros(len(self.boundaries), self.dim, dtype=torch.float64, device=device)
        delta = (zero if old is None else old.to(device)) - (zero if new is None else new.to(device))
        rows = self.halves[0].row
        a = torch.tensor([rows[i] for i in self.blocks], dtype=torch.long, device=device)  # input rows of the blocks
        for h in self.halves:
            s, G, C, n = h.stats["s"], h.stats["G"], h.stats["C"], h.n
            if len(a):
                sa, sb, da, db = s[a], s[a + 1], delta[a], delta[a + 1]
                C += sa[:, :, None] * db[:, None, :] + da[:, :, None] * (sb + n * db)[:, None, :]
            G += s[:, :, None] * delta[:, None, :] + delta[:, :, None] * (s + n * delta)[:, None, :]
            s += n * delta
        self.ref = None if new is None else new.to(device)

    # --- streaming -------------------------------------------------------------------------

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
        if self.boundaries is not None and keys != self.boundaries:
            raise ValueError(f"states has boundaries {keys}, but this accumulator was started with {self.boundaries}")
        first = states[keys[0]]
        if first.ndim != 3:
            raise ValueError(f"states must be (B, T, d) tensors, got shape {tuple(first.shape)}")
        B, T, d = first.shape
        if self.dim is not None and d != self.dim:
            raise ValueError(f"boundary {keys[0]}: expected width {self.dim}, got {d}")
        if mask is None:
            mask = torch.ones(B, T, dtype=torch.bool, device=first.device)
        mask = mask.to(first.device).bool()
        if mask.shape != (B, T):
            raise ValueError(f"mask must have shape {(B, T)}, got {tuple(mask.shape)}")
        for b in keys:
            if tuple(states[b].shape) != (B, T, d):
                raise ValueError(f"boundary {b}: expected shape {(B, T, d)}, got {tuple(states[b].shape)}")
        if self.boundaries is None:
            self._start(keys, d, first.device)

        half_of_row = (torch.arange(B, device=first.device) + self._rows) % 2
        self._rows += B
        # Flat indices of the counted tokens of each half, shared by every boundary.
        half_idx = [torch.nonzero((mask & (half_of_row == h)[:, None]).reshape(-1)).squeeze(1) for h in (0, 1)]
        flats = [states[b].reshape(B * T, d) for b in keys]
        mixed = self.precision == "mixed"
        if mixed and self.ref is None and sum(i.numel() for i in half_idx):
            ref = _reference(flats, torch.cat(half_idx))
            bad = ~torch.isfinite(ref).all(1)
            if bool(bad.any()):
                b = keys[int(torch.nonzero(bad)[0])]
                raise ValueError(f"boundary {b} (input of block {b}, output of block {b - 1}) contains NaN or Inf")
            self._shift(ref)
        ref32 = None if self.ref is None else self.ref.to(torch.float32)
        work = torch.float32 if mixed else torch.float64
        ops = _NumpyOps if first.device.type == "cpu" else _TorchOps
        mom0 = self.halves[0]
        pairs = [(mom0.row[i], p) for i, p in mom0.pair.items()]  # (row of the block's input, row in C)
        K = len(keys)
        for h, idx in enumerate(half_idx):
            n = int(idx.numel())
            if n == 0:
                continue
            self.halves[h].n += n
            # Boundaries go in groups (rows lo..hi-1; consecutive groups share a row), so that the
            # stacked states of a group take at most about 128 MB on a CPU and 1 GB on a GPU.
            budget = _GROUP_BYTES.get(first.device.type, _GROUP_BYTES["cuda"]) // (n * d * (torch.finfo(work).bits // 8))
            g = max(2, min(K, budget))
            lo = 0
            while True:
                hi = min(K, lo + g)
                S = ops.gather(flats[lo:hi], idx, work)  # (hi - lo, n, d), this group's own copy
                group_pairs = [(a - lo, q) for a, q in pairs if lo <= a < hi - 1]
                self._add(ops, h, S, lo, 0 if lo == 0 else 1, group_pairs, None if ref32 is None else ref32[lo:hi], keys)
                if hi == K:
                    break
                lo = hi - 1
        return self

    def _add(self, ops, h: int, S: torch.Tensor, lo: int, skip: int, pairs: list[tuple[int, int]], ref32, keys) -> None:
        """Add half ``h``'s tokens at boundary rows lo.. (S: (g, n, d) unshifted states).

        The first ``skip`` rows of S were added by the previous group; they only serve as the
        input of a block here.
        """
        stats, sums = self.halves[h].stats, self.token_sums
        f64 = torch.float64
        own = slice(lo + skip, lo + len(S))
        # Per-token statistics, from the unshifted states.
        norm = ops.rowdot(S, S).sqrt()  # (g, n)
        sums["norm"][own] += norm[skip:].sum(1, dtype=f64)
        if pairs:
            a, b = _index([k for k, _ in pairs]), _index([k + 1 for k, _ in pairs])
            q = slice(pairs[0][1], pairs[-1][1] + 1)  # a group's blocks are consecutive rows of C
            X0, X1 = S[a], S[b]
            du = ops.sub(X1, X0)
            sums["delta"][q] += ops.rowdot(du, du).sqrt().sum(1, dtype=f64)
            del du
            cos = ops.rowdot(X0, X1) / (norm[a] * norm[b]).clamp_min(1e-12)
            sums["cos"][q] += cos.sum(1, dtype=f64)
        if ref32 is not None:
            ops.sub_(S, ref32[:, None, :])  # x = h - ref
        s = ops.colsum64(S)  # (g, d)
        bad = ~torch.isfinite(s).all(1)
        if bool(bad.any()):
            k = keys[lo + int(torch.nonzero(bad)[0])]
            raise ValueError(f"boundary {k} (input of block {k}, output of block {k - 1}) contains NaN or Inf")
        stats["s"][own] += s[skip:]
        with _ieee_float32(S.device):
            top, bottom = _gram_parts(S)
            _add_gram(ops, stats["G"][own], top[skip:], bottom[skip:])
            if not pairs:
                pass
            elif S.dtype == f64:
                ops.add_(stats["C"][q], torch.bmm(S[a].transpose(1, 2), S[b]))
            else:
                X0 = S[a]
                D = ops.sub(S[b], X0)  # the block's update: its rounding scales with it, not with the stream
                _add_gram(ops, stats["C"][q], top[a], bottom[a])
                Cd = torch.bmm(X0.transpose(1, 2), D)
                ops.add_(stats["C"][q], Cd)
        if S.dtype == f64:
            return
        # The diagonals (which every trace in the scores is made of) summed in float64.
        sq = ops.colsum64(S, S)
        _set_diagonal(stats["G"][own], sq[skip:], top[skip:], bottom[skip:])
        if pairs:
            _set_diagonal(stats["C"][q], sq[a] + ops.colsum64(X0, D), top[a], bottom[a], Cd)

    def merge(self, other: "LinearityAccumulator") -> "LinearityAccumulator":
        """Add another accumulator's statistics into this one (in place); returns self.

        The two may use different reference means (and precisions): ``other``'s statistics are
        re-expressed around this one's reference in float64 first.
        """
        if other.boundaries is None:
            return self
        if self.boundaries is None:
            self.only = other.only
            self._start(list(other.boundaries), other.dim, other.halves[0].stats["s"].device)
        elif other.boundaries != self.boundaries or other.dim != self.dim or other.blocks != self.blocks:
            raise ValueError("cannot merge accumulators over different boundaries, blocks or widths")
        target = self.ref
        if target is None and self.precision == "mixed" and self.n_tokens == 0:
            target = other.ref
        self._shift(target)
        theirs = other._copy()
        theirs._shift(target)
        for (mine, k), (their, _) in zip(self._slots(), theirs._slots()):
            mine[k] += their[k].to(mine[k].device)
        for mine, their in zip(self.halves, theirs.halves):
            mine.n += their.n
        self._rows += other._rows
        return self

    def _copy(self) -> "LinearityAccumulator":
        out = LinearityAccumulator(self.only, self.precision)
        out.boundaries, out.dim, out._rows = list(self.boundaries), self.dim, self._rows
        out.halves = tuple(_Moments(h.n, {k: v.clone() for k, v in h.stats.items()}, h.row, h.pair) for h in self.halves)
        out.token_sums = {k: v.clone() for k, v in self.token_sums.items()}
        out.ref = None if self.ref is None else self.ref.clone()
        return out

    def all_reduce(self, group=None) -> "LinearityAccumulator":
        """Sum the statistics over every rank of a ``torch.distributed`` group, in place.

        Each rank streams its own shard of the tokens (e.g. under ``torchrun`` or ``accelerate``),
        then every rank calls this; afterwards each holds the statistics of all tokens and
        :meth:`result` gives the same table everywhere. All ranks must have scored the same
        boundaries. Rank 0's reference means are broadcast and every rank re-expresses its
        statistics around them (float64); then one ``all_reduce`` of a flat float64 buffer
        (gloo or NCCL).
        """
        if self.boundaries is None:
            raise ValueError("all_reduce before any update(): every rank must score at least one batch")
        device = self.halves[0].stats["s"].device
        src = 0 if group is None else dist.get_global_rank(group, 0)
        ref = torch.zeros(len(self.boundaries) * self.dim + 1, dtype=torch.float64, device=device)
        if self.ref is not None:
            ref[0] = 1.0
            ref[1:] = self.ref.reshape(-1)
        dist.broadcast(ref, src=src, group=group)
        self._shift(ref[1:].reshape(len(self.boundaries), self.dim).clone() if ref[0] > 0 else None)
        slots = self._slots()
        counts = torch.tensor([self.halves[0].n, self.halves[1].n, self._rows], dtype=torch.float64, device=device)
        flat = torch.cat([counts] + [store[k].reshape(-1) for store, k in slots])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM, group=group)
        self.halves[0].n, self.halves[1].n, self._rows = (int(round(c)) for c in flat[:3].tolist())
        offset = 3
        for store, k in slots:
            size = store[k].numel()
            store[k] = flat[offset: offset + size].reshape(store[k].shape).clone()
            offset += size
        return self

    # --- results ---------------------------------------------------------------------------

    def _total(self) -> _Moments:
        """Statistics of all counted tokens (solves run where the statistics are, in float64)."""
        return self.halves[0].plus(self.halves[1])

    def _mean(self, total: _Moments, b: int) -> np.ndarray:
        """Token mean of boundary b (reference added back)."""
        mean = total.sum(b) / total.n
        return (mean if self.ref is None else mean + self.ref[total.row[b]]).cpu().numpy()

    def _require_blocks(self) -> None:
        if not self.blocks:
            raise ValueError("no block has both its input and output boundary; call update() first")

    def fitted_maps(self, ridge: float = 0.0) -> dict[int, LinearMap]:
        """The least-squares affine map of every block, fitted on all counted tokens.

        ``ridge`` (>= 0, default 0: the plain least-squares fit, unchanged) adds ``lam I`` to the
        centered Gram matrix, ``A = (Gxx + lam I)^-1 Gxy`` with ``lam = ridge * tr(Gxx) / d`` (so
        ``ridge`` is relative to the mean eigenvalue, whatever the scale of the states); solved by
        Cholesky, never an explicit inverse.
        """
        if not isinstance(ridge, (int, float)) or isinstance(ridge, bool) or not math.isfinite(ridge) or ridge < 0:
            raise ValueError(f"ridge must be a finite number >= 0, got {ridge!r}")
        self._require_blocks()
        total = self._total()
        maps = {}
        check_token_count(total.n, self.dim, f"blocks {self.blocks}")
        for i in self.blocks:
            Gxx, Gxy, tyy, _, _ = total.centered(i)
            if ridge > 0:
                lam = ridge * float(Gxx.trace()) / self.dim
                Gxx = Gxx + lam * torch.eye(self.dim, dtype=Gxx.dtype, device=Gxx.device)
            maps[i] = LinearMap(A=_solve_psd(Gxx, Gxy).cpu().numpy(), mu_x=self._mean(total, i), mu_y=self._mean(total, i + 1),
                                rms_y=math.sqrt(tyy / total.n))
        return maps

    def residual_covariance(self) -> dict[int, np.ndarray]:
        """Covariance of the fitted map's residuals y - y_hat per block, (d, d) float64.

        ``(Gyy - Gxy^T A) / n`` on centered statistics: the reference for asking whether the
        per-token errors are heavier-tailed than Gaussian errors of the same covariance.
        """
        self._require_blocks()
        total = self._total()
        out = {}
        for i in self.blocks:
            Gxx, Gxy, _, _, _ = total.centered(i)
            my = total.sum(i + 1) / total.n
            Gyy = total.gram(i + 1) - total.n * torch.outer(my, my)
            R = Gyy - Gxy.T @ _solve_psd(Gxx, Gxy)
            out[i] = ((R + R.T) / (2 * total.n)).cpu().numpy()
        return out

    def result(self) -> pd.DataFrame:
        """One row per block ``i`` (boundary i -> i+1).

        Columns:
            block, n_tokens, d, chance (= d/(n-1)),
            score / score_nores: in-sample linearity with and without the residual,
            heldout / heldout_nores: 2-fold held-out R^2 (NaN when a half has n <= d),
            procrustes: orthogonal Procrustes similarity,
            cosine: mean cos(h_i, h_{i+1}) over tokens,
            norm_resid: mean ||h_i||, norm_block: mean ||h_{i+1} - h_i||, norm_ratio (block / input
            stream), norm_out: mean ||h_{i+1}||, norm_ratio_out (block / the stream it makes: Fig 3's),
            note: a warning text when n < 10 d,
            sse: the least-squares residual sum of squares of Y on X (the same for Y - X on X),
            ss_y: ||Y - mean(Y)||_F^2 and ss_block: ||B - mean(B)||_F^2 with B = Y - X, the
            centered sums of squares (so score = 1 - sse/ss_y, score_nores = 1 - sse/ss_block
            and 1 - score = (1 - score_nores) * ss_block / ss_y).
        """
        self._require_blocks()
        halves = self.halves
        total, n, d = self._total(), self.n_tokens, self.dim
        sums = {k: v.cpu().numpy() for k, v in self.token_sums.items()}
        rows = []
        note = check_token_count(n, d, f"blocks {self.blocks}")
        for i in self.blocks:
            Gxx, Gxy, tyy, txx, txy = total.centered(i)
            sse = max(tyy - _PSD(Gxx).explained(Gxy), 0.0)
            sst_nores = tyy - 2 * txy + txx
            cross = Gxy / math.sqrt(txx * tyy)
            held, held_nores = self._heldout(i, halves)
            norm_x, norm_dx = sums["norm"][total.row[i]], sums["delta"][total.pair[i]]
            norm_y = sums["norm"][total.row[i + 1]]
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
                    cosine=sums["cos"][total.pair[i]] / n,
                    norm_resid=norm_x / n,
                    norm_block=norm_dx / n,
                    norm_ratio=norm_dx / norm_x,
                    norm_out=norm_y / n,
                    norm_ratio_out=norm_dx / norm_y,
                    note=note or "",
                    sse=sse,
                    ss_y=tyy,
                    ss_block=sst_nores,
                )
            )
        return pd.DataFrame(rows)

    def _heldout(self, i: int, halves: list[_Moments]) -> tuple[float, float]:
        """Pooled 2-fold held-out R^2 of block i, with and without the residual.

        The map fitted on one half, y^ = (x - mx_f) A + my_f, is scored on the other half. With
        the test half's centered statistics and mean offsets dx = mx_t - mx_f, dy = my_t - my_f,
        its error is tyy_t - 2 <A, Gxy_t> + <A, Gxx_t A> + n_t ||dx A - dy||^2.
        """
        if min(h.n for h in halves) <= self.dim:
            return math.nan, math.nan
        parts = [(h.n, h.sum(i) / h.n, h.sum(i + 1) / h.n, *h.centered(i)) for h in halves]
        sse = sst = sst_nores = 0.0
        for f, t in ((0, 1), (1, 0)):
            _, mx_f, my_f, Gxx_f, Gxy_f, _, _, _ = parts[f]
            n_t, mx_t, my_t, Gxx_t, Gxy_t, tyy_t, txx_t, txy_t = parts[t]
            A = _PSD(Gxx_f).solve(Gxy_f)
            shift = (mx_t - mx_f) @ A - (my_t - my_f)
            sse += float(tyy_t - 2 * (A * Gxy_t).sum() + (A * (Gxx_t @ A)).sum() + n_t * shift @ shift)
            sst += tyy_t
            sst_nores += tyy_t - 2 * txy_t + txx_t
        return 1 - sse / sst, 1 - sse / sst_nores


def _reference(flats: list[torch.Tensor], idx: torch.Tensor) -> torch.Tensor:
    """(K, d) float64 means of the tokens ``idx`` at each boundary, rounded to float32 values.

    Rounded so that the reference itself is exact in float32 and float64 alike.
    """
    return torch.stack([f.index_select(0, idx).to(torch.float64).mean(0) for f in flats]).to(torch.float32).to(torch.float64)


def _index(rows: list[int]):
    """A slice when ``rows`` are consecutive (a view, no copy), else a list for fancy indexing."""
    if rows == list(range(rows[0], rows[0] + len(rows))):
        return slice(rows[0], rows[0] + len(rows))
    return rows


def _gram_parts(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x^T x of each (n, d) slice of x (g, n, d), in x's dtype, as two parts.

    ``top`` (g, h, d) holds rows 0..h-1 and ``bottom`` (g, d-h, d-h) the lower-right block; the
    lower-left block is the transpose of top's right part. 3/4 of the flops of a full product.
    """
    h = x.shape[-1] // 2 if x.shape[-1] >= 128 else x.shape[-1]
    top = torch.bmm(x[:, :, :h].transpose(1, 2), x)
    bottom = torch.bmm(x[:, :, h:].transpose(1, 2), x[:, :, h:])
    return top, bottom


def _add_gram(ops, acc: torch.Tensor, top: torch.Tensor, bottom: torch.Tensor) -> None:
    """acc (g, d, d) float64 += the Gram matrices given by :func:`_gram_parts`."""
    h = top.shape[1]
    ops.add_(acc[:, :h], top)
    if h < acc.shape[-1]:
        ops.add_(acc[:, h:, :h], top[:, :, h:].transpose(1, 2))
        ops.add_(acc[:, h:, h:], bottom)


def _set_diagonal(acc: torch.Tensor, exact: torch.Tensor, top: torch.Tensor, bottom: torch.Tensor, extra=None) -> None:
    """Replace the float32 diagonal just added into ``acc`` by ``exact`` (float64 sums).

    ``top``/``bottom`` (and ``extra``, a full (g, d, d) product) are what was added.
    """
    h = top.shape[1]
    added = torch.cat([top[:, :, :h].diagonal(dim1=1, dim2=2), bottom.diagonal(dim1=1, dim2=2)], 1).to(torch.float64)
    if extra is not None:
        added = added + extra.diagonal(dim1=1, dim2=2).to(torch.float64)
    acc.diagonal(dim1=1, dim2=2).add_(exact - added)


class _TorchOps:
    """The O(n d) operations of an update, in torch (any device)."""

    @staticmethod
    def gather(flats: list[torch.Tensor], idx: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return torch.stack([f.detach().index_select(0, idx) for f in flats]).to(dtype)

    @staticmethod
    def rowdot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a * b).sum(-1)

    @staticmethod
    def colsum64(a: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        """Sums over tokens (axis 1) of a (or a * b), accumulated in float64."""
        return (a if b is None else a * b).sum(1, dtype=torch.float64)

    @staticmethod
    def sub(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a - b

    @staticmethod
    def sub_(a: torch.Tensor, b: torch.Tensor) -> None:
        a.sub_(b)

    @staticmethod
    def add_(acc: torch.Tensor, v: torch.Tensor) -> None:
        acc.add_(v)


class _NumpyOps(_TorchOps):
    """The same on the CPU through numpy, on the tensors' own memory.

    Single-threaded numpy loops here run 5-10x faster than torch's parallel ones on a small
    shared machine, and numpy sums float32 data in float64 without a float64 copy.
    """

    @staticmethod
    def gather(flats, idx, dtype):
        rows = idx.numpy()
        out = np.empty((len(flats), len(rows), flats[0].shape[1]), dtype=np.float32 if dtype == torch.float32 else np.float64)
        for j, f in enumerate(flats):
            f = f.detach()
            if f.dtype not in (torch.float32, torch.float64):
                f = f.to(dtype)
            f = f.numpy()
            if f.dtype == out.dtype:
                np.take(f, rows, axis=0, out=out[j])
            else:
                out[j] = f[rows]
        return torch.from_numpy(out)

    @staticmethod
    def rowdot(a, b):
        return torch.from_numpy(np.einsum("gnd,gnd->gn", a.numpy(), b.numpy()))

    @staticmethod
    def colsum64(a, b=None):
        if b is None:
            return torch.from_numpy(np.add.reduce(a.numpy(), axis=1, dtype=np.float64))
        return torch.from_numpy(np.einsum("gnd,gnd->gd", a.numpy(), b.numpy(), dtype=np.float64))

    @staticmethod
    def sub(a, b):
        return torch.from_numpy(np.subtract(a.numpy(), b.numpy()))

    @staticmethod
    def sub_(a, b):
        an = a.numpy()
        np.subtract(an, b.numpy(), out=an)

    @staticmethod
    def add_(acc, v):
        an = acc.numpy()
        np.add(an, v.numpy(), out=an)


@contextmanager
def _ieee_float32(device: torch.device):
    """Full float32 matrix products on CUDA (no TF32) for the duration."""
    if device.type != "cuda" or _ALLOW_TF32:
        yield
        return
    matmul = torch.backends.cuda.matmul
    old = matmul.allow_tf32
    matmul.allow_tf32 = False
    try:
        yield
    finally:
        matmul.allow_tf32 = old


# TF32 (10-bit mantissa products) loses the fidelity of "mixed"; a switch for measuring that.
_ALLOW_TF32 = False
# Memory for one group of stacked states in update(), by device type.
_GROUP_BYTES = {"cpu": 2**27, "cuda": 2**30}
