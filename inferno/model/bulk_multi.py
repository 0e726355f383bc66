"""c model instances without a batching delay: the chain at batch starts over the instances'
residual batch times.

Triton with ``instance_group count`` c > 1 and no ``max_queue_delay``: one FCFS queue, and an
instance that is free takes min(waiting, N) at once; a request that finds an instance free
starts alone. A batch of b takes τ(b) = κ·(α + β·b), deterministic. What happens next depends
on how long each busy instance still runs, so the state is the *multiset of residual times*
of the c instances (0: free) and the number L left waiting, taken just after each batch start:

- L > 0 and an instance free (two finished together): the next batch starts at once;
- an instance free, L = 0: the next arrival, Exp(λ) later, starts a batch of 1;
- all busy: the first finishes at t, the shortest residual; A ~ Poisson(λt) arrive meanwhile
  and it takes min(L + A, N); if none waits it idles until the next arrival.

Residual times live on a grid of step h = τ(N)/M; a time that falls between two points (a new
batch's τ(b), a residual minus an exponential idle time) has its probability split between the
two so that its mean is kept. The stationary distribution of this chain and renewal-reward over
the cycles between batch starts give the means; with M = 32, 16, 12 for c = 2, 3, 4 they are
within 2 % of the emulator and p95 within 4 % (bench/serving_config_accuracy.py), and doubling M
moves the mean by less than 1 %.

The distributions are in :mod:`.bulk_multi_time`.

Only the waiting requests are capped, at K − N (the single instance's waiting room); the
emulator caps the requests held, in service too, so the two differ where the queue fills.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from itertools import product
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from ._stationary import forget_lent, stationary_from
from .bulk import BulkMetrics, _poisson_pmf

__all__ = ["MAX_EXACT_INSTANCES", "MultiChain", "in_room", "multi_chain", "multi_metrics"]

F = NDArray[np.float64]
Ix = NDArray[np.int64]

#: the residual grid's steps per τ(N), by c: the chain's size grows as M^(c−1)
GRID = {2: 32, 3: 16, 4: 12}
#: beyond this many instances the chain is too large to solve per rate
MAX_EXACT_INSTANCES = max(GRID)
#: the waiting room first solved, in batches of N (:func:`multi_chain`)
FIRST_ROOM = 1
#: the share of arrivals that may find a partly solved room full before it is doubled
ROOM_TOL = 1e-10
#: the rooms the last solves of each chain needed, by rate (:func:`multi_chain`)
_ROOMS: dict[tuple[float, ...], dict[float, int]] = {}
_ROOMS_PER_CHAIN = 64
_ROOMS_CHAINS = 1024
_ROOMS_LOCK = threading.Lock()
_C = TypeVar("_C")
_TINY = 1e-13  # transition probabilities below this are dropped (the row is renormalised)
_U_NODES, _U_WEIGHTS = np.polynomial.legendre.leggauss(8)
_CHUNK_CELLS = 1 << 20  # (multiset, L, arrivals) cells of the busy spells built at once


def _split(x: F) -> tuple[Ix, Ix, F]:
    """Grid points below and above ``x`` (in steps) and the weight of the upper one; a point
    within 1e-9 of the grid is on it."""
    near = np.round(x)
    x = np.where(np.abs(x - near) < 1e-9, near, x)
    lo = np.floor(x)
    w = x - lo
    return lo.astype(np.int64), lo.astype(np.int64) + 1, w


@dataclass(frozen=True)
class MultiChain:
    """The solved chain: per state (a residual multiset ``res``, ms, sorted; ``left`` L) its
    stationary probability at batch starts and the expected rewards of the cycle it opens."""

    n: int
    c: int
    rate: float
    qmax: int
    tau: F  # τ(b), b = 0..N (τ(0) unused)
    res: F  # (S, c) residual times, ms, ascending
    left: Ix  # (S,)
    pi: F  # (S,) stationary probability at batch starts
    cycle: F  # expected time to the next start
    area: F  # expected ∫ waiting dt over the cycle
    started: F  # expected size of the batch that ends the cycle
    work: F  # expected τ(b) of that batch
    charged: F  # expected b·τ(b) of that batch
    lost: F  # expected arrivals turned away over the cycle


def _encode(r: Ix, base: int) -> Ix:
    """A sorted residual array (…, c) as one integer."""
    s = np.sort(r, axis=-1)
    code = np.zeros(s.shape[:-1], dtype=np.int64)
    for i in range(s.shape[-1]):
        code = code * base + s[..., i]
    return code


def _decode(code: Ix, c: int, base: int) -> Ix:
    out = np.zeros((*code.shape, c), dtype=np.int64)
    x = code.copy()
    for i in range(c - 1, -1, -1):
        out[..., i] = x % base
        x //= base
    return out


def idle_slots(rate: float, h: float, m: int) -> tuple[F, F]:
    """The idle spell E ~ Exp(λ) in slots of h up to (M+2)·h, each at its conditional mean
    (masses, means): the last is the tail beyond, at +inf (every instance free by then)."""
    edges = np.arange(m + 3) * h
    lo, hi = edges[:-1], edges[1:]
    mass = np.exp(-rate * lo) - np.exp(-rate * hi)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (np.exp(-rate * lo) * (lo + 1 / rate) - np.exp(-rate * hi) * (hi + 1 / rate)) / mass
    keep = mass > _TINY
    e_mass: F = np.append(mass[keep], np.exp(-rate * edges[-1]))
    e_mean: F = np.append(np.where(keep, mean, 0.0)[keep], np.inf)
    return e_mass, e_mean


class _Grid:
    """Successors of residual multisets, independent of L: after a batch of b starts on the
    free instance, and after an idle spell ended by an arrival that starts a batch of 1."""

    def __init__(self, tau: F, n: int, c: int, rate: float, m: int) -> None:
        self.n, self.c, self.m = n, c, m
        self.h = float(tau[n]) / m
        self.base = m + 2
        pos = tau / self.h
        self.b_lo, self.b_hi, self.b_w = _split(pos)
        self.e_mass, self.e_mean = idle_slots(rate, self.h, m)

    def after_batch(self, others: Ix) -> tuple[Ix, F]:
        """(F, c−1) residuals of the other instances → codes (F, N+1, 2) and weights."""
        f = others.shape[0]
        codes = np.zeros((f, self.n + 1, 2), dtype=np.int64)
        wts = np.zeros((f, self.n + 1, 2))
        for j, (pts, w) in enumerate(((self.b_lo, 1.0 - self.b_w), (self.b_hi, self.b_w))):
            full = np.concatenate(
                [
                    np.broadcast_to(others[:, None, :], (f, self.n + 1, self.c - 1)),
                    np.broadcast_to(pts[None, :, None], (f, self.n + 1, 1)),
                ],
                axis=-1,
            )
            codes[:, :, j] = _encode(full, self.base)
            wts[:, :, j] = w[None, :]
        return codes, wts

    def after_idle(self, others: Ix) -> tuple[Ix, F]:
        """(F, c−1) residuals → codes and weights (F, X) after an idle spell and a batch of 1."""
        x = others[:, None, :] - (self.e_mean / self.h)[None, :, None]  # (F, E, c−1)
        x = np.where(x > 0, x, 0.0)
        lo, hi, w = _split(x)
        parts_c, parts_w = [], []
        for pick in product((0, 1), repeat=self.c):
            pts = np.where(np.array(pick[:-1], dtype=bool)[None, None, :], hi, lo)
            ww = np.prod(
                np.where(np.array(pick[:-1], dtype=bool)[None, None, :], w, 1.0 - w), axis=-1
            )
            one = self.b_hi[1] if pick[-1] else self.b_lo[1]
            ww = ww * (self.b_w[1] if pick[-1] else 1.0 - self.b_w[1]) * self.e_mass[None, :]
            full = np.concatenate([pts, np.full((*pts.shape[:-1], 1), one)], axis=-1)
            parts_c.append(_encode(full, self.base))
            parts_w.append(ww)
        return np.concatenate(parts_c, axis=1), np.concatenate(parts_w, axis=1)


def _multisets(g: _Grid) -> tuple[Ix, Ix, F, Ix, F]:
    """Every residual multiset reachable from the empty replica, with its successor tables."""
    c = g.c
    start = np.zeros((1, c), dtype=np.int64)
    seen: dict[int, int] = {}
    rows: list[Ix] = []
    frontier = start
    tab_b, w_b, tab_i, w_i = [], [], [], []
    while frontier.shape[0]:
        for r in _encode(frontier, g.base).tolist():
            seen[r] = len(seen)
        rows.append(frontier)
        t = frontier[:, :1]
        others = frontier[:, 1:] - t
        cb, wb = g.after_batch(others)
        wb[:, 0, :] = 0.0  # no batch of 0
        ci, wi = g.after_idle(others)
        tab_b.append(cb)
        w_b.append(wb)
        tab_i.append(ci)
        w_i.append(wi)
        new = np.unique(np.concatenate([cb[wb > 0], ci[wi > _TINY]]))
        new = np.array([x for x in new.tolist() if x not in seen], dtype=np.int64)
        frontier = _decode(new, c, g.base)
    res = np.concatenate(rows)
    lookup = np.vectorize(seen.__getitem__, otypes=[np.int64])
    origin = _encode(start, g.base)[0]
    cb, wb = np.concatenate(tab_b), np.concatenate(w_b)
    ci, wi = np.concatenate(tab_i), np.concatenate(w_i)
    cb = np.where(wb > 0, cb, origin)  # no weight: any valid code
    ci = np.where(wi > _TINY, ci, origin)
    return res, lookup(cb), wb, lookup(ci), np.where(wi > _TINY, wi, 0.0)


def clear_rooms() -> None:
    """Forget the rooms earlier solves needed and the factorisations they lend
    (a bench timing a first decision)."""
    with _ROOMS_LOCK:
        _ROOMS.clear()
    forget_lent()


def multi_chain(
    alpha: float, beta: float, n: int, k: int, rate: float, c: int, kappa: float
) -> MultiChain:
    """Solve the chain of the module docstring (2 ≤ c ≤ :data:`MAX_EXACT_INSTANCES`).

    The waiting room K − N is solved only as far as the queue reaches: first up to one batch
    (:data:`FIRST_ROOM` batches), then twice that, … until fewer than :data:`ROOM_TOL` of the
    arrivals would find the room so far full, or the whole room is in. Below saturation the
    queue rarely holds more than a batch or two, so most solves are a fraction of the full chain
    (tests/model/test_bulk_multi.py holds the two to the same means)."""
    tau = kappa * (alpha + beta * np.arange(n + 1, dtype=np.float64))
    g = _Grid(tau, n, c, rate, GRID[c])
    tables = _multisets(g)
    key = (alpha, beta, n, k, c, kappa, GRID[c])
    return in_room(
        key, n, k, rate, lambda room: _solve(tau, n, rate, c, g, tables, room, (*key, room))
    )


def in_room(key: tuple[float, ...], n: int, k: int, rate: float, solve: Callable[[int], _C]) -> _C:
    """``solve(room)`` with the smallest waiting room that holds the queue: first up to one
    batch (:data:`FIRST_ROOM` batches) or the room a lower rate of the same chain (``key``)
    needed, then twice that, … until fewer than :data:`ROOM_TOL` of the arrivals would find it
    full, or the whole room K − N is in. Where a higher rate of the chain is known, its room
    (enough there, so here) is the first one tried: a chain sized at λ* and then evaluated at
    the rate its replicas get is solved once there, not once per room."""
    full_room = max(k - n, 1)
    with _ROOMS_LOCK:
        rooms = _ROOMS.get(key, {})
        known = [r for lam, r in rooms.items() if lam <= rate]
        above = [r for lam, r in rooms.items() if lam >= rate]
    room = min(full_room, max([FIRST_ROOM * n, 1, *known]))
    if above:
        room = max(room, min(above))
    while True:
        out = solve(room)
        ch = _chain_of(out)
        if room >= full_room or float(ch.pi @ ch.lost) <= ROOM_TOL * rate * float(ch.pi @ ch.cycle):
            break
        room = min(full_room, 2 * room)
    with _ROOMS_LOCK:
        rooms = _ROOMS.setdefault(key, {})
        rooms[rate] = room
        while len(rooms) > _ROOMS_PER_CHAIN:
            del rooms[next(iter(rooms))]
        while len(_ROOMS) > _ROOMS_CHAINS:
            del _ROOMS[next(iter(_ROOMS))]
    return out


def _chain_of(out: object) -> MultiChain:
    ch = getattr(out, "chain", out)
    assert isinstance(ch, MultiChain)
    return ch


def _solve(
    tau: F,
    n: int,
    rate: float,
    c: int,
    g: _Grid,
    tables: tuple[Ix, Ix, F, Ix, F],
    qmax: int,
    reuse: tuple[object, ...] | None = None,
) -> MultiChain:
    """The chain with at most ``qmax`` waiting (arrivals beyond are turned away)."""
    res, nxt_b, wt_b, nxt_i, wt_i = tables
    nr = res.shape[0]
    width = qmax + 1
    t_ms: F = res[:, 0].astype(np.float64) * g.h
    # transitions from every (multiset, L) that can occur: L > 0 only after a full batch, so
    # only where the multiset holds τ(N) (the grid's last point, M); the rest are cut below
    full = np.any(res == g.m, axis=1)
    src: list[Ix] = []
    dst: list[Ix] = []
    val: list[F] = []
    # per (multiset, L): the cycle's expected length, ∫ waiting, batch, τ(b), b·τ(b), losses
    cycle, area, started, work, charged, lost = np.zeros((6, nr, width))
    ell = np.arange(width)
    bsz = np.minimum(ell, n)

    def add(r: Ix, l_from: Ix, r_to: Ix, l_to: Ix, p: F) -> None:
        keep = p > _TINY
        src.append((r * width + l_from)[keep])
        dst.append((r_to * width + l_to)[keep])
        val.append(p[keep])

    # an instance free, L > 0 (two finished together): min(L, N) start at once
    free_full = np.flatnonzero((res[:, 0] == 0) & full)
    rr, ll = (x.ravel() for x in np.meshgrid(free_full, ell[1:], indexing="ij"))
    b = bsz[ll]
    for j in range(2):
        add(rr, ll, nxt_b[rr, b, j], ll - b, wt_b[rr, b, j])
    started[free_full, 1:] = bsz[1:]
    work[free_full, 1:] = tau[bsz[1:]]
    charged[free_full, 1:] = bsz[1:] * tau[bsz[1:]]
    # idle (an instance free and L = 0, or all busy and nobody came): a batch of 1 at the next
    # arrival; p0 is the chance that the cycle from (multiset, 0) goes that way
    p0 = (res[:, 0] == 0).astype(np.float64)
    # all busy: the first finishes at t, A ~ Poisson(λt) arrived, it takes min(L + A, N)
    busy = np.flatnonzero(res[:, 0] > 0)
    most = float(rate * t_ms.max())
    reach_a = int(most + 12.0 * np.sqrt(most) + 20.0)  # arrivals in a spell, beyond: < 1e-13
    pa = _poisson_pmf(reach_a, rate * t_ms[busy])  # (B, reach_a)
    p0[busy] = pa[:, 0]
    last = reach_a - np.argmax(pa[:, ::-1] > _TINY, axis=1)  # arrivals beyond: dropped
    s_nodes = (_U_NODES + 1.0) / 2.0  # the spell's quadrature, as fractions of t
    # the busy multisets in chunks (all their L at once): the full ones with every L, the rest
    # with L = 0 only; arrivals beyond a multiset's ``last`` have no weight
    for group, rows in ((busy[full[busy]], ell), (busy[~full[busy]], ell[:1])):
        pos = np.searchsorted(busy, group)
        nrow = rows.size
        step = max(1, _CHUNK_CELLS // max(nrow * reach_a, 1))
        for lo in range(0, group.size, step):
            r = group[lo : lo + step]
            at = pos[lo : lo + step]
            span = int(last[at].max())
            arr = np.arange(span)
            live = arr[None, :] < last[at][:, None]  # (F, A)
            q_raw = rows[:, None] + arr[None, :]  # (W, A)
            q = np.minimum(q_raw, qmax)  # arrivals beyond qmax waiting are turned away
            p = np.where(live, pa[at, :span], 0.0)[:, None, :]  # (F, 1, A)
            p = np.broadcast_to(p, (r.size, nrow, span)).copy()
            p[:, 0, 0] = 0.0  # the idle case, below
            bq = bsz[q]  # (W, A)
            rr = np.broadcast_to(r[:, None, None], p.shape)
            lq = np.broadcast_to(rows[None, :, None], p.shape)
            for j in range(2):
                add(
                    rr.ravel(),
                    lq.ravel(),
                    nxt_b[r[:, None, None], bq[None], j].ravel(),
                    np.broadcast_to((q - bq)[None], p.shape).ravel(),
                    (p * wt_b[r[:, None, None], bq[None], j]).ravel(),
                )
            t = t_ms[r]
            cycle[r, :nrow] = t[:, None]
            # ∫ min(L + A(s), qmax) ds over the spell, by Gauss–Legendre in s
            ps = _poisson_pmf(span, (rate * t[:, None] * s_nodes[None, :]).ravel())
            ps = ps.reshape(r.size, s_nodes.size, span) * live[:, None, :]  # (F, nodes, A)
            inner = np.einsum("wa,fna->fwn", q.astype(np.float64), ps)
            area[r, :nrow] = inner @ _U_WEIGHTS * (t[:, None] / 2.0)
            started[r, :nrow] = np.einsum("fwa,wa->fw", p, bq.astype(np.float64))
            work[r, :nrow] = np.einsum("fwa,wa->fw", p, tau[bq])
            charged[r, :nrow] = np.einsum("fwa,wa->fw", p, bq * tau[bq])
            lost[r, :nrow] = np.einsum(
                "fwa,wa->fw", p, np.clip(q_raw - qmax, 0, None).astype(np.float64)
            )
    idle = np.flatnonzero(p0 > 0)
    zero = np.zeros(idle.size, dtype=np.int64)
    for j in range(nxt_i.shape[1]):
        add(idle, zero, nxt_i[idle, j], zero, p0[idle] * wt_i[idle, j])
    cycle[idle, 0] += p0[idle] / rate
    started[idle, 0] += p0[idle]
    work[idle, 0] += p0[idle] * tau[1]
    charged[idle, 0] += p0[idle] * tau[1]
    origin = int(np.flatnonzero(np.all(res == 0, axis=1))[0]) * width
    reach, pi = stationary_from(src, dst, val, nr * width, origin, reuse)
    ri, li = np.divmod(reach, width)
    flat = [x.ravel()[reach] for x in (cycle, area, started, work, charged, lost)]
    times: F = res[ri].astype(np.float64) * g.h
    return MultiChain(n, c, rate, qmax, tau, times, li, pi, *flat)


def multi_metrics(ch: MultiChain) -> BulkMetrics:
    """Means by renewal-reward over the cycles between batch starts."""
    pi = ch.pi
    cyc = float(pi @ ch.cycle)
    per_start = float(pi @ ch.started)
    thr = per_start / cyc
    wait = float(pi @ ch.area) / per_start
    service = float(pi @ ch.charged) / per_start
    response = wait + service
    return BulkMetrics(
        rate=ch.rate,
        throughput=thr,
        response=response,
        service=service,
        wait=wait,
        avg_batch=per_start,
        utilization=float(pi @ ch.work) / cyc / ch.c,
        blocking=float(pi @ ch.lost) / (ch.rate * cyc),
        in_system=thr * response,
    )
