"""Per-kind formulas, vectorised: τ(b), the batch limit N, and the reported ITL/TTFT.

Every function takes a :class:`KindArrays` (parameters of C points of one kind, shape (C,)) and
returns arrays. Units: ms and tokens. See ``docs/performance-model.md`` §2 for the formulas.
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


def g3_chunks(p: KindArrays, b: F) -> F:
    """nc(B): the fewest prefill chunks j with B_j ≥ B, B_j = ⌊(j+m)(M − L/j)/(L+m)⌋.

    ``b`` is (C, B) or (C,); the result has its shape (float, ≥ 1).
    """
    big_l, m, big_m = p.in_tokens, p.out_tokens, p.max_num_tokens
    bmax = b.max(axis=1) if b.ndim == 2 else b
    count = np.ones_like(b, dtype=np.float64)
    j = 1.0
    need = np.ones(big_l.shape, dtype=bool)
    while need.any():
        with np.errstate(divide="ignore", invalid="ignore"):
            bj = np.floor((j + m) * (big_m - big_l / j) / (big_l + m))
        bj = np.where(np.isfinite(bj), bj, np.inf)
        below = (_col(bj) < b) if b.ndim == 2 else (bj < b)
        count = count + below
        need = need & (bj < bmax)
        j += 1.0
        if j > 1e6:  # a budget too small for the input: every B needs this many chunks
            break
    return count


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
