"""Per-kind formulas, vectorised: τ(b), the batch limit N, and the reported ITL/TTFT.

Every function takes a :class:`KindArrays` (parameters of C points of one kind, shape (C,)) and
returns arrays. Units: ms and tokens. The formulas are in ``docs/model.md`` ("Profiles").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .profiles import Kind

F = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class KindArrays:
    """Parameters of C points of one kind. Unused parameters of a kind are 0."""

    kind: Kind
    alpha: F
    beta: F
    gamma: F
    delta: F
    max_num_tokens: F
    in_tokens: F
    out_tokens: F

    def take(self, idx: NDArray[np.intp]) -> KindArrays:
        return KindArrays(
            self.kind,
            self.alpha[idx],
            self.beta[idx],
            self.gamma[idx],
            self.delta[idx],
            self.max_num_tokens[idx],
            self.in_tokens[idx],
            self.out_tokens[idx],
        )


def _col(v: F) -> F:
    return v[:, None]


# --- G2/G3 building blocks ------------------------------------------------------------------


def _g2_iteration(p: KindArrays, b: F) -> F:
    """T(b) = α + b (β t_c + γ t_m) with t_c = (in+out)/(out+1), t_m = in + out/2."""
    t_c = (p.in_tokens + p.out_tokens) / (p.out_tokens + 1.0)
    t_m = p.in_tokens + p.out_tokens / 2.0
    per = p.beta * t_c + p.gamma * t_m
    if b.ndim == 2:
        return _col(p.alpha) + b * _col(per)
    return p.alpha + b * per


def _g2_prefill(p: KindArrays, b: F) -> F:
    extra = (p.beta + p.gamma) * p.in_tokens
    has_in = p.in_tokens > 0
    if b.ndim == 2:
        return np.where(has_in[:, None], _g2_iteration(p, b) + _col(extra), 0.0)
    return np.where(has_in, _g2_iteration(p, b) + extra, 0.0)


def _g2_decode(p: KindArrays, b: F) -> F:
    extra = p.beta + p.gamma * (p.in_tokens + p.out_tokens / 2.0)
    return _g2_iteration(p, b) + (_col(extra) if b.ndim == 2 else extra)


#: the most prefill chunks counted: a token budget too small for the input needs this many
_G3_MAX_CHUNKS = 1_000_000
_G3_BLOCK = 1024  # chunk counts j evaluated at once


def g3_chunks(p: KindArrays, b: F) -> F:
    """nc(B): the fewest prefill chunks j with B_j ≥ B, B_j = ⌊(j+m)(M − L/j)/(L+m)⌋.

    ``b`` is (C, B) or (C,); the result has its shape (float, ≥ 1): 1 + the number of j ≥ 1 with
    B_j < B, over j = 1, 2, ... until every row has reached its largest B (at most
    :data:`_G3_MAX_CHUNKS`). The j are taken a block at a time and counted by sorting, so the
    cost is O(C·(j + B)) and not O(C·j·B): a large batch and a small budget take seconds, not
    hours.
    """
    rows = b if b.ndim == 2 else b[:, None]
    below = np.zeros(rows.shape)  # Σ_j [B_j < B]
    if rows.size == 0:
        return np.ones_like(b, dtype=np.float64)
    big_l, m, big_m = _col(p.in_tokens), _col(p.out_tokens), _col(p.max_num_tokens)
    bmax = rows.max(axis=1)
    need = np.ones(bmax.shape, dtype=bool)
    start = 1
    while need.any() and start <= _G3_MAX_CHUNKS:
        j = np.arange(start, min(start + _G3_BLOCK, _G3_MAX_CHUNKS + 1), dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            bj = np.floor((j + m) * (big_m - big_l / j) / (big_l + m))
        bj = np.where(np.isfinite(bj), bj, np.inf)
        hit = bj >= bmax[:, None]
        reached = hit.any(axis=1)
        if not (need & ~reached).any():  # every row is done within this block: stop there
            stop = int(hit[need].argmax(axis=1).max()) + 1
            bj = bj[:, :stop]
        below += _count_below(bj, rows)
        need &= ~reached
        start += j.size
    out: F = (1.0 + below).reshape(b.shape)
    return out


def _count_below(values: F, keys: F) -> F:
    """Per row, how many of ``values`` (C, J) are below each of ``keys`` (C, B), exactly."""
    lo, hi = values.min(axis=1)[:, None], values.max(axis=1)[:, None]
    out: F = np.where(keys > hi, float(values.shape[1]), 0.0)  # above every value: all of them
    inside = (keys > lo) & (keys <= hi)
    if not inside.any():
        return out
    # the rows whose keys fall among their values: sort each row, shift row i by i·width so that
    # the rows follow each other, and find every key in the one sorted array
    r, c = np.nonzero(inside)
    rows, at = np.unique(r, return_inverse=True)
    k_lo, k_hi = float(keys[r, c].min()), float(keys[r, c].max())
    width = k_hi - k_lo + 3.0
    # clipping to [k_lo − 1, k_hi + 1] keeps every comparison with a key (and makes inf finite)
    ordered = np.sort(np.clip(values[rows], k_lo - 1.0, k_hi + 1.0), axis=1)
    ordered += (np.arange(rows.size) * width)[:, None]
    found = np.searchsorted(ordered.ravel(), keys[r, c] + at * width, side="left")
    out[r, c] = found - at * values.shape[1]
    return out


def _g3_parts(p: KindArrays, b: F, nc: F) -> tuple[F, F, F]:
    """(w_pre, δ, iteration-offset α) for batch b with nc chunks; shapes follow b."""
    big_l, m = p.in_tokens, p.out_tokens
    if b.ndim == 2:
        big_l, m = _col(big_l), _col(m)
        beta, gamma, alpha = _col(p.beta), _col(p.gamma), _col(p.alpha)
    else:
        beta, gamma, alpha = p.beta, p.gamma, p.alpha
    w_pre = (beta + gamma * (nc + 1.0) / 2.0) * big_l
    w_dec = beta * m + gamma * m * (big_l + (m + 1.0) / 2.0)
    delta = (w_pre + w_dec) / (nc + m)
    return w_pre, delta, alpha


def g3_prefill(p: KindArrays, b: F, nc: F) -> F:
    w_pre, delta, alpha = _g3_parts(p, b, nc)
    return nc * np.maximum(alpha + (b - 1.0) * delta, 0.0) + w_pre


def g3_itl(p: KindArrays, b: F, nc: F) -> F:
    _, delta, alpha = _g3_parts(p, b, nc)
    big_l, m = p.in_tokens, p.out_tokens
    return np.maximum(alpha + (b - 1.0) * delta, 0.0) + p.beta + p.gamma * (big_l + (m + 1.0) / 2.0)


def g3_iteration(p: KindArrays, b: F, nc: F) -> F:
    _, delta, alpha = _g3_parts(p, b, nc)
    return alpha + b * delta


# --- the three things every kind defines ----------------------------------------------------


def tau(p: KindArrays, b: F) -> F:
    """τ(b) for a (C, B) matrix of batch sizes b ≥ 1."""
    k = p.kind
    if k is Kind.G0:
        return _col(p.out_tokens) * (_col(p.alpha) + _col(p.beta) * b)
    if k is Kind.BATCH:
        return _col(p.alpha) + _col(p.beta) * b
    if k is Kind.G1:
        decode = _col(p.alpha) + _col(p.beta) * b
        prefill = np.where(
            (p.in_tokens > 0)[:, None], _col(p.gamma) + _col(p.delta * p.in_tokens) * b, 0.0
        )
        return prefill + _col(p.out_tokens - 1.0) * decode
    if k is Kind.G2:
        return _g2_prefill(p, b) + _col(p.out_tokens) * _g2_decode(p, b)
    nc = g3_chunks(p, b)
    return (nc + _col(p.out_tokens)) * g3_iteration(p, b, nc)


def report(p: KindArrays, n_batch: F, service: F, wait: F, in_service: F) -> tuple[F, F]:
    """(ITL, TTFT) from the mean service time S, mean wait W and mean batch occupancy n̄ = Ls.

    Batch-kind models have neither: both are NaN.
    """
    k = p.kind
    if k is Kind.BATCH:
        nan = np.full_like(service, np.nan)
        return nan, nan.copy()
    if k is Kind.G0:
        with np.errstate(divide="ignore", invalid="ignore"):  # no tokens: no ITL to meet (inf)
            itl = service / p.out_tokens
        return itl, wait + itl
    if k is Kind.G1:
        out1 = p.out_tokens - 1.0
        den = p.delta * p.in_tokens + p.beta * out1
        safe = np.where(den > 0, den, 1.0)
        n_eff = np.where(den > 0, (service - p.gamma - p.alpha * out1) / safe, n_batch)
        n_eff = np.clip(n_eff, 0.0, n_batch)
        itl = p.alpha + p.beta * n_eff
        prefill = np.where(p.in_tokens > 0, p.gamma + p.delta * p.in_tokens * n_eff, 0.0)
        return itl, wait + prefill
    if k is Kind.G2:
        prefill = _g2_prefill(p, in_service)
    else:
        nc = g3_chunks(p, np.maximum(np.round(in_service), 1.0))
        prefill = g3_prefill(p, in_service, nc)
    itl = (service - prefill) / p.out_tokens
    return itl, wait + prefill + itl
