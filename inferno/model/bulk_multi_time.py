"""The response-time and wait distributions of c instances without a batching delay (the
chain of :mod:`.bulk_multi`), by PASTA over its cycles.

An arrival that finds an instance free starts alone. One that arrives u into an all-busy cycle
with q ahead is in the (⌊q/N⌋+1)-th batch to start: every batch before it is full, so the
instances free at the known epochs r_i + j·τ(N), and its own batch takes it, those behind it
that came meanwhile and at most N in all. Gathered on a histogram of τ(N)/512 bins.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from .bulk import BulkMetrics, _poisson_pmf
from .bulk_multi import _U_NODES, _U_WEIGHTS, MultiChain

__all__ = ["HistogramTime", "MultiResponseTime", "spell_cells"]

F = NDArray[np.float64]

_BINS_PER_BATCH = 512  # histogram bins per τ(N)
_CHUNK = 256  # wait bins expanded at once


class HistogramTime:
    """Distributions gathered on a histogram of ``dx`` bins: ``_resp_cdf`` and ``_wait_cdf`` hold
    the distribution functions at the bins' edges, read between them linearly."""

    dx: float
    _resp_cdf: F
    _wait_cdf: F

    def _sf(self, cdf: F, times: F | Sequence[float]) -> F:
        s = np.atleast_1d(np.asarray(times, dtype=np.float64))
        edges = np.arange(cdf.size) * self.dx
        out: F = np.clip(1.0 - np.interp(s, edges, cdf), 0.0, 1.0)
        return out

    def survival(self, times: F | Sequence[float]) -> F:
        """P(R > t) at each t."""
        return self._sf(self._resp_cdf, times)


class MultiResponseTime(HistogramTime):
    """P(R > t) and P(W > t) of :class:`MultiChain`'s accepted requests, by PASTA over the
    cycles (module docstring), gathered on a histogram of τ(N)/512 bins."""

    def __init__(self, ch: MultiChain, metrics: BulkMetrics) -> None:
        self.metrics = metrics
        n, c, lam, tau = ch.n, ch.c, ch.rate, ch.tau
        self.dx = float(tau[n]) / _BINS_PER_BATCH
        top = float(tau[n]) * (ch.qmax // n // c + 3)
        bins = int(top / self.dx) + 2
        resp = np.zeros(bins)
        t = ch.res[:, 0]
        total = float(ch.pi @ ch.cycle)
        busy = t > 0
        # time with an instance free: an arrival starts alone (wait 0, response τ(1))
        idle = (total - float(ch.pi[busy] @ t[busy])) / total
        resp[min(int(float(tau[1]) / self.dx), bins - 1)] += idle
        self._wait_zero = idle
        cells = spell_cells(ch, self.dx, bins)
        wait = cells.sum(axis=1)
        # its batch: rem ahead, itself and B ~ Poisson(λW) behind it, at most N
        for lo in range(0, bins, _CHUNK):
            eb, rm = np.nonzero(cells[lo : lo + _CHUNK] > 0)
            eb += lo
            wts = cells[eb, rm]
            mid: F = (eb.astype(np.float64) + 0.5) * self.dx
            pb = _poisson_pmf(n, lam * mid)  # (P, n)
            room = min(n, ch.qmax) - 1 - rm  # behind it that fit in the batch and the queue
            cum = np.cumsum(pb, axis=1)
            full = 1.0 - np.where(room > 0, cum[np.arange(eb.size), np.maximum(room - 1, 0)], 0.0)
            k = np.arange(n)[None, :]
            p = np.where(k < room[:, None], pb, np.where(k == room[:, None], full[:, None], 0.0))
            b = np.minimum(rm[:, None] + 1 + k, n)
            _add(resp, mid[:, None] + tau[b], wts[:, None] * p, self.dx)
        mass = resp.sum()
        self._resp_cdf = np.concatenate([[0.0], np.cumsum(resp) / mass])
        busy_mass = wait.sum()
        self._wait_cdf = np.concatenate([[0.0], np.cumsum(wait) / max(busy_mass, 1e-300)])
        self._busy = busy_mass / (busy_mass + self._wait_zero)

    def wait_survival(self, times: F | Sequence[float]) -> F:
        """P(W > t) at each t (W = 0 for a request that finds an instance free)."""
        s = np.atleast_1d(np.asarray(times, dtype=np.float64))
        out: F = np.where(s < 0, 1.0, self._busy * self._sf(self._wait_cdf, s))
        return out


def spell_cells(ch: MultiChain, dx: float, bins: int) -> F:
    """The arrivals that find every instance busy, by PASTA (the weight of each is its share of
    time), gathered by (bin of dx of the time until the instance that takes their batch frees,
    requests ahead of them in that batch): a request that arrives u into a cycle whose instances
    are all busy, with q ahead, is in the (⌊q/N⌋ + 1)-th batch to start, and every batch before
    its own is full, so the instances free at the known epochs r_i + j·τ(N)."""
    n, c, lam, tau = ch.n, ch.c, ch.rate, ch.tau
    width = ch.qmax + 1
    total = float(ch.pi @ ch.cycle)
    busy = ch.res[:, 0] > 0
    # busy spells, by residual multiset: Π[R, L]
    keys, inv = np.unique(ch.res[busy], axis=0, return_inverse=True)
    pi_rl = np.zeros((keys.shape[0], width))
    np.add.at(pi_rl, (inv.ravel(), ch.left[busy]), ch.pi[busy] / total)
    lag = np.arange(width)[None, :] - np.arange(width)[:, None]  # q − L
    q = np.arange(width)
    m = q // n  # full batches ahead of it
    rem = q - m * n  # ahead of it in its own batch
    acc = np.zeros(bins * n)  # arrivals' weight by (bin of the wait, rem)
    for tk in np.unique(keys[:, 0]):
        rows = np.flatnonzero(keys[:, 0] == tk)
        r = keys[rows]  # (R, c)
        pr = pi_rl[rows]
        epoch = r[:, m % c] + (m // c)[None, :] * float(tau[n])  # (R, width)
        for x, wg in zip(_U_NODES, _U_WEIGHTS, strict=True):
            u = tk * (x + 1.0) / 2.0
            pj = _poisson_pmf(width, np.array([lam * u]))[0]
            toe = np.where(lag >= 0, pj[np.clip(lag, 0, None)], 0.0)
            toe[:, -1] = 0.0  # q = qmax: turned away
            w = (pr @ toe) * (tk / 2.0 * wg)  # (R, width): q ahead
            at = np.clip(((epoch - u) / dx).astype(np.int64), 0, bins - 1)
            acc += np.bincount(
                (at * n + rem[None, :]).ravel(), weights=w.ravel(), minlength=bins * n
            )
    out: F = acc.reshape(bins, n)
    return out


def _add(hist: F, x: F, w: F, dx: float) -> None:
    idx = np.clip((np.asarray(x) / dx).astype(np.int64), 0, hist.size - 1)
    hist += np.bincount(idx.ravel(), weights=np.asarray(w).ravel(), minlength=hist.size)
