"""The response-time and wait distributions of c instances with a batching delay (the chain of
:mod:`.bulk_multi_delay`).

By PASTA a request arrives at a random time of a cycle between batch starts, in one of three
phases:

- *every instance busy*, u into the spell with q ahead (:func:`~.bulk_multi_time.spell_cells`): it
  is in the (⌊q/N⌋ + 1)-th batch to start, the batches before its own are full, and after
  W₀ (the instance that takes its batch frees) it has y = q mod N ahead and B ~ Poisson(λW₀)
  behind. y + 1 + B ≥ N: its batch of N starts then. Otherwise a window of x = y + 1 + B opens,
  whose horizon is D minus the age of the oldest of its batch: W₀ when y = 0, else W₀ + y/λ
  (the y ahead are the latest arrivals before it, taken at their mean spacing: an
  approximation);
- *idle*: it opens a window of horizon D alone;
- *a window* opened with x₀ waiting and horizon θ₀, v into it (x₀ + A(v) < N): it joins, the
  window now holding x₀ + A(v) + 1 with θ₀ − v left.

A request in a window (x, θ) waits W = min(θ, S_{N−x}) more and runs in a batch of
b = min(x + A(θ), N). The cases are gathered by (prior wait on a histogram of τ(N)/256, x,
θ on a grid of 97 points of [0, D]); the distribution of what follows the prior wait is a
histogram per (x, θ), and the two are convolved (by FFT, every (x, θ) at once).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .bulk import BulkMetrics, _poisson_pmf
from .bulk_multi_delay import DelayMultiChain
from .bulk_multi_time import HistogramTime, spell_cells

__all__ = ["MultiDelayTime"]

F = NDArray[np.float64]

_BINS_PER_BATCH = 256  # histogram bins per τ(N)
_THETA_POINTS = 97  # window horizons are gathered on this many points of [0, D]
_V_NODES, _V_WEIGHTS = np.polynomial.legendre.leggauss(16)


def _special() -> Any:
    from scipy import special

    return special


class MultiDelayTime(HistogramTime):
    """P(R > t) and P(W > t) of the accepted requests of a :class:`DelayMultiChain`."""

    def __init__(self, dc: DelayMultiChain, metrics: BulkMetrics) -> None:
        self.metrics = metrics
        ch = dc.chain
        n, c, lam, tau, d = ch.n, ch.c, ch.rate, ch.tau, dc.delay
        tau_n = float(tau[n])
        self.dx = dx = tau_n / _BINS_PER_BATCH
        grid = np.linspace(0.0, d, _THETA_POINTS)
        step = d / (_THETA_POINTS - 1)
        nb = int(tau_n * (ch.qmax // n // c + 3) / dx) + 2  # prior waits
        atoms = np.zeros((nb, n + 1, _THETA_POINTS))  # (prior-wait bin, x, θ): x = N starts

        def gather(b0: Any, x: Any, theta: Any, w: Any) -> None:
            b0, x, theta, w = np.broadcast_arrays(b0, x, theta, w)
            pos = np.clip(theta / step, 0.0, _THETA_POINTS - 1.0)
            lo = np.minimum(np.floor(pos), _THETA_POINTS - 2.0).astype(np.intp)
            frac = pos - lo
            x = x.astype(np.intp)
            full = x >= n
            xi = np.minimum(x, n)
            np.add.at(atoms, (b0, xi, np.where(full, 0, lo)), w * np.where(full, 1.0, 1.0 - frac))
            np.add.at(atoms, (b0, xi, lo + 1), np.where(full, 0.0, w * frac))

        # every instance busy: by (bin of W₀, y ahead in its batch)
        cells = spell_cells(ch, dx, nb)
        eb, y = np.nonzero(cells > 0)
        if eb.size:
            w = cells[eb, y]
            w0: F = (eb.astype(np.float64) + 0.5) * dx
            pb = _poisson_pmf(n, lam * w0)  # (P, N): B behind
            bb = np.arange(n)[None, :]
            x = y[:, None] + 1 + bb
            open_ = x < n
            age = w0 + y / lam
            theta = np.maximum(d - age, 0.0)
            gather(eb[:, None], x, theta[:, None], np.where(open_, w[:, None] * pb, 0.0))
            w_full = w * np.clip(1.0 - np.where(open_, pb, 0.0).sum(axis=1), 0.0, 1.0)
            gather(eb, np.full(eb.shape, n), np.zeros(eb.shape), w_full)
        # idle and windows (no prior wait): the cycles' windows by (x₀, θ₀)
        total = float(ch.pi @ ch.cycle)
        low = ch.left < n
        weight = ch.pi[low] / total
        ti, ell = dc.spell[low], ch.left[low]
        win = np.einsum("s,sxg->xg", weight, dc.opened[ti, ell])  # (N, G+1)
        idle = float(weight @ dc.idled[ti, ell])
        gather(0, 1, d, idle / lam)  # the idle phase: alone in a window (1, D)
        x0, g0 = np.nonzero(win > 0)
        th0 = np.concatenate([dc.theta[g0], [d]])
        w_win = np.concatenate([win[x0, g0], [idle]])
        x0 = np.concatenate([x0, [1]])
        for node, wg in zip(_V_NODES, _V_WEIGHTS, strict=True):
            v = th0 * (node + 1.0) / 2.0
            pa = _poisson_pmf(n, lam * v)  # (W, N): A(v)
            a = np.arange(n)[None, :]
            ok = x0[:, None] + a < n
            wv = np.where(ok, (w_win * th0 / 2.0 * wg)[:, None] * pa, 0.0)
            gather(0, x0[:, None] + a + 1, (th0 - v)[:, None], wv)
        # what follows the prior wait, per (x, θ): the window, then the batch
        sp = _special()
        nh = int((d + tau_n) / dx) + 3
        edges = np.arange(nh + 1) * dx
        resp_h = np.zeros((nh, n + 1, _THETA_POINTS))
        wait_h = np.zeros((nh, n + 1, _THETA_POINTS))
        resp_h[min(int(tau_n / dx), nh - 1), n, 0] = 1.0
        wait_h[0, n, 0] = 1.0
        th = grid[None, :]
        shift = int(round(tau_n / dx))
        cols = np.arange(_THETA_POINTS)
        for xw in range(1, n):
            k = n - xw
            # the count first: S_k in [e_i, e_{i+1}) ∩ [0, θ)
            cdf = sp.gammainc(k, lam * np.minimum(edges[:, None], th))  # (nh+1, G)
            fill = np.diff(cdf, axis=0)
            wait_h[:, xw] += fill
            resp_h[shift:, xw] += fill[: nh - shift]
            # timeout at θ with b = x + j < N
            pj = _poisson_pmf(k, lam * grid)  # (G, k)
            at_w = np.minimum((grid / dx).astype(np.intp), nh - 1)
            wait_h[at_w, xw, cols] += pj.sum(axis=1)  # one θ per column: no repeats
            at_r = np.minimum(((grid[:, None] + tau[xw:n][None, :]) / dx).astype(np.intp), nh - 1)
            np.add.at(resp_h[:, xw], (at_r, np.broadcast_to(cols[:, None], at_r.shape)), pj)
        live = atoms.reshape(nb, -1).sum(axis=0) > 0
        size = nb + nh
        fa = np.fft.rfft(atoms.reshape(nb, -1)[:, live], n=size, axis=0)
        resp = np.fft.irfft(
            (fa * np.fft.rfft(resp_h.reshape(nh, -1)[:, live], n=size, axis=0)).sum(axis=1), n=size
        )
        wait = np.fft.irfft(
            (fa * np.fft.rfft(wait_h.reshape(nh, -1)[:, live], n=size, axis=0)).sum(axis=1), n=size
        )
        resp = np.clip(resp, 0.0, None)
        wait = np.clip(wait, 0.0, None)
        self._resp_cdf = np.concatenate([[0.0], np.cumsum(resp) / resp.sum()])
        self._wait_cdf = np.concatenate([[0.0], np.cumsum(wait) / wait.sum()])

    def wait_survival(self, times: F | Sequence[float]) -> F:
        """P(W > t) at each t."""
        s = np.atleast_1d(np.asarray(times, dtype=np.float64))
        out: F = np.where(s < 0, 1.0, self._sf(self._wait_cdf, s))
        return out
