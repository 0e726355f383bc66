"""The response-time and wait distributions under a batching delay (see :mod:`.bulk_delay`).

By PASTA a request arrives at a random time, in one of three phases of the cycle between batch
starts (:class:`~inferno.model.bulk_delay.DelayChain`):

- *idle*: it opens a window of horizon D alone;
- *a window* opened with x₀ waiting and horizon θ₀, v into it (x₀ + A(v) < N): it joins, the
  window now holding x = x₀ + A(v) + 1 with θ = θ₀ − v left (x = N: the batch starts now);
- *a run* of the batch (b, L), u into it, Q = L + A(u) ahead: the ⌊Q/N⌋ full batches ahead of
  it start back to back, so after W₀ = τ(b) − u + ⌊Q/N⌋·τ(N) it has y = Q mod N ahead and
  B ~ Poisson(λW₀) behind. If y + 1 + B ≥ N its batch of N starts then; otherwise a window of
  x = y + 1 + B opens, whose horizon is D minus the age of the oldest waiting request: its own
  W₀ when y = 0, else W₀ + u·y/(Q + 1) (the oldest of those ahead taken at its mean place among
  the Q uniform arrivals — an approximation).

A request in a window (x, θ) waits W = min(θ, S_{N−x}) more and runs in a batch of
b = min(x + A(θ), N); P(W + τ(b) > s) has a closed form in Poisson distribution functions. The
run phase's u and the windows' v are integrated by Gauss–Legendre, A and B summed exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .bulk import BulkMetrics, _poisson_pmf
from .bulk_delay import DelayChain

__all__ = ["DelayResponseTime"]

F = NDArray[np.float64]

_U_NODES, _U_WEIGHTS = np.polynomial.legendre.leggauss(24)
_DROPPED_MASS = 1e-7  # the least likely atoms, this much probability in all, are dropped
_GRID = 97  # window horizons are gathered on this many points of [0, D]
_CELLS = 2_000_000


def _special() -> Any:
    from scipy import special

    return special


def _gather(x: F, theta: F, w: F, n: int, delay: float) -> tuple[F, F, F]:
    """Requests that wait in a window of x with horizon θ (weights w), gathered on a grid of θ:
    each weight split between the two nearest points so that the mean horizon is kept."""
    if delay <= 0:
        return x, theta, w
    step = delay / (_GRID - 1)
    pos = np.clip(theta / step, 0.0, _GRID - 1.0)
    lo = np.minimum(np.floor(pos), _GRID - 2.0)
    frac = pos - lo
    cells = np.zeros((n + 1, _GRID))
    xi = x.astype(np.intp)
    np.add.at(cells, (xi, lo.astype(np.intp)), w * (1.0 - frac))
    np.add.at(cells, (xi, lo.astype(np.intp) + 1), w * frac)
    gx, gt = np.nonzero(cells > 0)
    out_t: F = gt.astype(np.float64) * step
    return gx.astype(np.float64), out_t, cells[gx, gt]


class DelayResponseTime:
    """P(R > t) and P(W > t) of the accepted requests of a :class:`DelayChain`.

    ``service_scale`` multiplies the batch time a request is charged once its batch starts (the
    several-instance model runs the chain on τ/c but each batch takes τ:
    :mod:`.bulk_instances`)."""

    def __init__(self, chain: DelayChain, metrics: BulkMetrics, service_scale: float = 1.0) -> None:
        self.metrics = metrics
        ch = chain
        n, lam, d = ch.n, ch.rate, ch.delay
        self.n, self.rate, self.scale = n, lam, float(service_scale)
        self.tau_of = ch.tau_of
        cycle = float(ch.pi @ ch.cycle)
        w0s: list[F] = []  # prior wait
        xs: list[F] = []  # window count (N: starts at once with b = N)
        ths: list[F] = []  # window horizon
        wts: list[F] = []  # weight
        # idle: a window (1, D)
        p_idle = float(ch.pi @ ch.idle) / lam / cycle
        w0s.append(np.zeros(1))
        xs.append(np.ones(1))
        ths.append(np.full(1, d))
        wts.append(np.array([p_idle]))
        # windows: joined v into a window (x0, θ0)
        win_state, win_x, win_theta, win_weight = ch.opened()
        keep = win_weight * ch.pi[win_state.astype(np.intp)] > 1e-15
        x0 = win_x[keep]
        t0 = win_theta[keep]
        ww = (win_weight * ch.pi[win_state.astype(np.intp)])[keep] / cycle
        if x0.size:
            v = t0[:, None] * (_U_NODES[None, :] + 1.0) / 2.0  # (W, S)
            wv = (ww * t0 / 2.0)[:, None] * _U_WEIGHTS[None, :]
            pa = _poisson_pmf(n, (lam * v).ravel()).reshape(*v.shape, n)  # A(v) = 0..N−1
            y = x0[:, None, None] + np.arange(n)[None, None, :]  # waiting before it joins
            ok = y < n
            w = np.where(ok, wv[:, :, None] * pa, 0.0)
            gx, gt, gw = _gather(
                np.broadcast_to(np.minimum(y + 1.0, float(n)), w.shape).ravel(),
                np.broadcast_to((t0[:, None] - v)[:, :, None], w.shape).ravel(),
                w.ravel(),
                n,
                d,
            )
            w0s.append(np.zeros(gw.size))
            xs.append(gx)
            ths.append(gt)
            wts.append(gw)
        # runs
        busy = ch.pi * ch.tau / cycle
        live = busy > 1e-14
        tau_n = float(ch.tau_of[n])
        for s in np.flatnonzero(live):
            tau, b, ell = float(ch.tau[s]), float(ch.batch[s]), float(ch.left[s])
            u = tau * (_U_NODES + 1.0) / 2.0
            wu = busy[s] * _U_WEIGHTS / 2.0
            room = int(ch.k - b - ell)  # arrivals ahead that still let it in
            if room <= 0:
                continue
            pa = _poisson_pmf(room, lam * u)  # (S, room)
            q = np.broadcast_to(ell + np.arange(room, dtype=np.float64), pa.shape)  # ahead
            full, yq = np.divmod(q, float(n))
            w0 = (tau - u)[:, None] + full * tau_n
            wq = wu[:, None] * pa
            age = np.where(yq == 0, w0, w0 + u[:, None] * yq / (q + 1.0))
            theta = np.maximum(d - age, 0.0)
            # B behind: y + 1 + B ≥ N starts a full batch at W0
            nb = n
            bb = np.arange(nb, dtype=np.float64)
            pb = _poisson_pmf(nb, (lam * w0).ravel()).reshape(*w0.shape, nb)
            x = yq[:, :, None] + 1.0 + bb[None, None, :]
            open_ = x < n
            w_open = np.where(open_, wq[:, :, None] * pb, 0.0)
            w_full = wq * np.clip(1.0 - w_open.sum(axis=2) / np.maximum(wq, 1e-300), 0.0, 1.0)
            w0s += [np.broadcast_to(w0[:, :, None], x.shape).ravel(), w0.ravel()]
            xs += [np.minimum(x, float(n)).ravel(), np.full(w0.size, float(n))]
            ths += [np.broadcast_to(theta[:, :, None], x.shape).ravel(), np.zeros(w0.size)]
            wts += [w_open.ravel(), w_full.ravel()]
        w_all = np.concatenate(wts)
        total = float(w_all.sum())
        order = np.argsort(w_all)
        dropped = np.cumsum(w_all[order]) <= _DROPPED_MASS * total
        big = np.ones(w_all.size, dtype=bool)
        big[order[dropped]] = False
        self._w = w_all[big] / total
        self._w0 = np.concatenate(w0s)[big]
        self._x = np.concatenate(xs)[big]
        self._th = np.concatenate(ths)[big]

    @property
    def atoms(self) -> int:
        """How many (prior wait, window) cases the distribution sums."""
        return int(self._w.size)

    def _chunks(self, times: F | Sequence[float]) -> list[F]:
        t = np.atleast_1d(np.asarray(times, dtype=np.float64))
        step = max(1, _CELLS // max(self._w.size, 1))
        return [t[i : i + step] for i in range(0, t.size, step)] or [t]

    def wait_survival(self, times: F | Sequence[float]) -> F:
        """P(W > t) at each t."""
        sp = _special()
        out = []
        for t in self._chunks(times):
            s = t[:, None] - self._w0[None, :]
            k = self.n - self._x[None, :]  # arrivals that fill the window
            more = sp.pdtr(np.maximum(k - 1.0, 0.0), self.rate * np.maximum(s, 0.0))
            p = np.where(s < 0, 1.0, np.where((s < self._th[None, :]) & (k > 0), more, 0.0))
            out.append((self._w[None, :] * p).sum(axis=1))
        res: F = np.clip(np.concatenate(out), 0.0, 1.0)
        return res

    def survival(self, times: F | Sequence[float]) -> F:
        """P(R > t) at each t."""
        parts = [self._survival(t) for t in self._chunks(times)]
        out: F = np.clip(np.concatenate(parts), 0.0, 1.0)
        return out

    def _survival(self, t: F) -> F:
        sp = _special()
        n, lam, c = self.n, self.rate, self.scale
        alpha = c * float(self.tau_of[0])
        beta = c * float(self.tau_of[1] - self.tau_of[0])
        tau_n = alpha + beta * n
        s = t[:, None] - self._w0[None, :]  # time left after the prior wait
        x, th = self._x[None, :], self._th[None, :]
        k = n - x
        mean_th = lam * th
        # the window fills at S_k ∈ (s − τ(N), θ): P(A(θ) ≥ k) − P(A(max(s − τN, 0)) ≥ k)
        lo = np.clip(s - tau_n, 0.0, None)
        p_fill = np.where(
            (k > 0) & (lo < th),
            sp.pdtr(k - 1.0, lam * lo) - sp.pdtr(np.maximum(k - 1.0, 0.0), mean_th),
            0.0,
        )
        # it closes at θ with b = x + j < N, j < k: τ(x + j) > s − θ ⟺ j ≥ j0
        if beta > 0:
            with np.errstate(over="ignore", invalid="ignore"):
                j0 = np.floor((s - th - alpha) / beta - x) + 1.0
            j0 = np.clip(np.nan_to_num(j0, nan=0.0, posinf=np.inf, neginf=0.0), 0.0, None)
            p_close = np.where(
                (k > 0) & (j0 <= k - 1.0),
                sp.pdtr(k - 1.0, mean_th) - np.where(j0 > 0, sp.pdtr(j0 - 1.0, mean_th), 0.0),
                0.0,
            )
        else:
            p_close = np.where((k > 0) & (alpha > s - th), sp.pdtr(k - 1.0, mean_th), 0.0)
        p_now = np.where(tau_n > s, 1.0, 0.0)  # k = 0: batch of N at once
        p = np.where(k > 0, p_fill + p_close, p_now)
        out: F = (self._w[None, :] * p).sum(axis=1)
        return out
