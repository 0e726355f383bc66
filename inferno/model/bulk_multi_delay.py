"""c model instances with a batching delay D: the chain of :mod:`.bulk_multi` with windows.

The policy (Triton's dynamic batcher on c instances, one FCFS queue): a free instance starts a
batch when N requests wait, or when the oldest waiting one has waited D, taking all waiting (at
most N); an instance never starts while busy. The chain is taken just after each batch start,
over the multiset of the c residual batch times (0: free) and the number L left waiting, as in
:mod:`.bulk_multi`; what differs is what a free instance does with fewer than N waiting. From
a start (residuals r, L), with t the shortest residual (0: an instance is free):

- all busy (t > 0): A ~ Poisson(λt) arrive before the first instance frees, X = L + A waiting
  (capped at the room). X ≥ N: a full batch starts then, leaving X − N. X = 0: the instance
  idles until the next arrival, which opens a *window* of horizon D. 1 ≤ X < N: a window opens
  with X waiting and horizon D minus the age of the oldest waiting request;
- an instance free: L ≥ N, a full batch starts at once; L = 0, idle then a window (1, D);
  1 ≤ L < N (two instances finished together), a window with L waiting.

A window with x waiting and horizon θ closes at W = min(θ, S_{N−x}) (S_k: the time to k more
arrivals) with b' = N if the count got there first, else x + A(θ); the batch starts on the free
instance and nobody is left waiting. Meanwhile the busy instances run on: their residuals drop
by the idle spell and W, which are split between grid points so that their mean is kept, slot
by slot of the grid as for the idle spell of :mod:`.bulk_multi`.

The age of the oldest waiting request is what the state does not hold. When nobody was left
waiting at the start (L = 0) the oldest is the first of the X arrivals of the spell, whose age
at its end is t·V with P(V ≤ v) = v^X (exact). When L ≥ 1 its age at the start is taken as
Gamma(L, λ): the L waiting are the L latest arrivals, and looking back from a time the gaps
between Poisson arrivals are exponential (an approximation: the start is not a time chosen
independently of the arrivals). Horizons are gathered on the grid of the residuals.

With D = 0 every window closes at once and the chain is :mod:`.bulk_multi`'s, to the bit
(tests/model/test_bulk_multi_delay.py). Means follow by renewal-reward
(:func:`~.bulk_multi.multi_metrics`). The waiting room must hold a batch (K ≥ 2N) so that a
window can fill.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._stationary import stationary_from
from .bulk import _poisson_pmf
from .bulk_multi import (
    _CHUNK_CELLS,
    _TINY,
    _U_NODES,
    _U_WEIGHTS,
    MultiChain,
    _decode,
    _encode,
    _split,
    idle_slots,
    in_room,
)

__all__ = ["DELAY_GRID", "DelayMultiChain", "delay_chain"]

#: the residual grid's steps per τ(N), by c: coarser than :data:`~.bulk_multi.GRID` (each
#: state's windows reach every shift and batch, so a solve costs more per state); against
#: GRID's the means move by less than 0.2 % (tests/model/test_bulk_multi_delay.py)
DELAY_GRID = {2: 24, 3: 12, 4: 10}

F = NDArray[np.float64]
Ix = NDArray[np.int64]


def _special() -> Any:
    from scipy import special

    return special


@dataclass(frozen=True)
class _Windows:
    """What a window leaves, by (x waiting, horizon θ_g on the grid): the joint probability of
    the shift of the busy instances' residuals (grid steps 0..M; M frees them all) and the batch
    b' it closes with, and the window's mean length and ∫ waiting."""

    theta: F  # (G+1,) horizons: g·h, the last D
    joint: F  # (N, G+1, M+1, N+1): x = 1..N−1 (row 0 unused)
    length: F  # (N, G+1)
    area: F  # (N, G+1)


def _shift_split(mass: F, mean: F, h: float, m: int) -> F:
    """Masses at mean times (…, S) → masses on shifts 0..M (…, M+1), each split between the
    two nearest grid steps so that its mean is kept; M or more frees every instance."""
    pos = np.minimum(mean / h, float(m))
    lo, hi, w = _split(pos)
    lo = np.minimum(lo, m)
    hi = np.minimum(hi, m)
    shape = (*mass.shape[:-1], m + 1)
    count = int(np.prod(shape[:-1], dtype=np.int64))
    row = np.broadcast_to(
        np.arange(count).reshape(*shape[:-1], 1) * (m + 1), (*shape[:-1], mass.shape[-1])
    )
    mass = np.broadcast_to(mass, row.shape)
    # np.bincount sums the two ends' weights per (row, step): np.add.at's result, far faster
    idx = np.concatenate([(row + lo).ravel(), (row + hi).ravel()])
    wts = np.concatenate([(mass * (1.0 - w)).ravel(), (mass * w).ravel()])
    out: F = np.bincount(idx, weights=wts, minlength=count * (m + 1)).reshape(shape)
    return out


def _windows(n: int, rate: float, delay: float, h: float, m: int) -> _Windows:
    sp = _special()
    g_top = max(int(np.ceil(delay / h - 1e-9)), 1)
    theta = np.minimum(np.arange(g_top + 1) * h, delay)
    ng = theta.size
    joint = np.zeros((n, ng, m + 1, n + 1))
    length = np.zeros((n, ng))
    area = np.zeros((n, ng))
    # slots of the count's closing time S_k ~ Erlang(k, λ) below each horizon
    edges = np.arange(g_top + 1) * h
    for x in range(1, n):
        k = n - x
        pk = _poisson_pmf(k, rate * theta)  # (G+1, k): A(θ) = 0..k−1
        tail = 1.0 - np.cumsum(pk, axis=1)  # P(A(θ) > i)
        length[x] = tail.sum(axis=1) / rate
        area[x] = (tail * (x + np.arange(k))[None, :]).sum(axis=1) / rate
        # timeout at θ with b' = x + A(θ) < N
        shift_t = _shift_split(np.ones((ng, 1)), theta[:, None], h, m)  # (G+1, M+1)
        joint[x, :, :, x:n] += shift_t[:, :, None] * pk[:, None, :]
        # the count first: S_k in slot [e_i, e_{i+1}) ∩ [0, θ)
        lo = np.minimum(edges[None, :-1], theta[:, None])  # (G+1, G)
        hi = np.minimum(edges[None, 1:], theta[:, None])
        mass = sp.gammainc(k, rate * hi) - sp.gammainc(k, rate * lo)
        part = (k / rate) * (sp.gammainc(k + 1, rate * hi) - sp.gammainc(k + 1, rate * lo))
        mean = np.where(mass > _TINY, part / np.maximum(mass, 1e-300), lo)
        mass = np.where(mass > _TINY, mass, 0.0)
        joint[x, :, :, n] += _shift_split(mass, mean, h, m)
    return _Windows(theta, joint, length, area)


def _idle(n: int, rate: float, delay: float, h: float, m: int) -> tuple[F, float, float]:
    """Idle until an arrival (E ~ Exp(λ)), then a window (1, D): the joint (shift, b'), the
    mean length of the whole and its ∫ waiting. The idle spell is slotted as in
    :mod:`.bulk_multi` (slots of h up to (M+2)·h, then every instance free)."""
    sp = _special()
    e_mass, e_mean = idle_slots(rate, h, m)
    joint = np.zeros((m + 1, n + 1))
    if n == 1 or delay <= 0:
        joint[:, 1] = _shift_split(e_mass[None, :], e_mean[None, :], h, m)[0]
        return joint, 1.0 / rate, 0.0
    k = n - 1
    pk = _poisson_pmf(k, np.array([rate * delay]))[0]
    tail = 1.0 - np.cumsum(pk)
    length = float(tail.sum()) / rate
    area = float((tail * (1 + np.arange(k))).sum()) / rate
    # timeout: E + D, b' = 1 + A(D)
    st = _shift_split(e_mass[None, :], (e_mean + delay)[None, :], h, m)[0]
    joint[:, 1:n] += st[:, None] * pk[None, :]
    # the count: E + S, S < D in slots of h
    s_edges = np.minimum(np.arange(int(np.ceil(delay / h - 1e-9)) + 1) * h, delay)
    lo, hi = s_edges[:-1], s_edges[1:]
    s_mass = sp.gammainc(k, rate * hi) - sp.gammainc(k, rate * lo)
    s_part = (k / rate) * (sp.gammainc(k + 1, rate * hi) - sp.gammainc(k + 1, rate * lo))
    ok = s_mass > _TINY
    s_mean = s_part[ok] / s_mass[ok]
    pm = (e_mass[:, None] * s_mass[None, ok]).ravel()
    pt = (e_mean[:, None] + s_mean[None, :]).ravel()
    joint[:, n] += _shift_split(pm[None, :], pt[None, :], h, m)[0]
    return joint, 1.0 / rate + length, area


def _horizons(theta: F, top: F, cdf: F, part: F) -> F:
    """The horizon θ = top − a of an age a whose distribution function and partial expectation
    at the ages top − θ_g are ``cdf`` and ``part`` (…, G+1): masses on the grid θ_g, each
    slot's split between its ends so that its mean is kept; a ≥ top (expired) is θ = 0."""
    ng = theta.size
    out = np.zeros(cdf.shape)
    # age in [top − θ_{g+1}, top − θ_g): θ in (θ_g, θ_{g+1}]
    mass = cdf[..., :-1] - cdf[..., 1:]
    mean_age = np.where(
        mass > _TINY, (part[..., :-1] - part[..., 1:]) / np.maximum(mass, 1e-300), 0.0
    )
    mass = np.where(mass > _TINY, mass, 0.0)
    th = np.clip(top[..., None] - mean_age, theta[:-1], theta[1:])
    gap = theta[1:] - theta[:-1]
    w = np.where(gap > 0, (th - theta[:-1]) / np.where(gap > 0, gap, 1.0), 0.0)
    out[..., : ng - 1] += mass * (1.0 - w)
    out[..., 1:] += mass * w
    out[..., 0] += 1.0 - cdf[..., 0]  # the age reached top − θ_0 = top: expired
    return out


def _gamma_horizons(theta: F, ell: Ix, span: float, rate: float, delay: float) -> F:
    """Horizons (L, G+1) of a window opened ``span`` after a start that left each of ``ell``
    waiting, the oldest's age at the start Gamma(ell, λ)."""
    sp = _special()
    top = delay - span
    if top <= 0:
        out = np.zeros((ell.size, theta.size))
        out[:, 0] = 1.0
        return out
    ages = np.clip(top - theta, 0.0, None)[None, :]
    cdf = sp.gammainc(ell[:, None], rate * ages)
    part = (ell[:, None] / rate) * sp.gammainc(ell[:, None] + 1, rate * ages)
    return _horizons(theta, np.full(ell.shape, top), cdf, part)


def _first_horizons(theta: F, t: float, x: F, delay: float) -> F:
    """Horizons (X, G+1) of a window opened at the end of a spell t in which x ≥ 1 arrived
    (the oldest is the first of them: age t·V, P(V ≤ v) = v^x)."""
    ages = np.clip(delay - theta, 0.0, None)
    v = np.clip(ages / t, 0.0, 1.0)[None, :]
    cdf = v ** x[:, None]
    part = t * x[:, None] / (x[:, None] + 1.0) * v ** (x[:, None] + 1.0)
    return _horizons(theta, np.full(x.shape, delay), cdf, part)


def _tables(res: Ix, m: int, n: int, c: int, base: int, b_lo: Ix, b_hi: Ix) -> Ix:
    """Codes (S, M+1, N+1, 2) of the multiset after the busy residuals drop by a shift and a
    batch of b' starts on the free instance (its τ(b') split between two grid points)."""
    others = res[:, 1:] - res[:, :1]  # (S, c−1) after the spell
    sh = np.arange(m + 1)
    moved = np.clip(others[:, None, :] - sh[None, :, None], 0, None)  # (S, M+1, c−1)
    out = np.zeros((res.shape[0], m + 1, n + 1, 2), dtype=np.int64)
    for j, pts in enumerate((b_lo, b_hi)):
        full = np.concatenate(
            [
                np.broadcast_to(moved[:, :, None, :], (res.shape[0], m + 1, n + 1, c - 1)),
                np.broadcast_to(pts[None, None, :, None], (res.shape[0], m + 1, n + 1, 1)),
            ],
            axis=-1,
        )
        out[..., j] = _encode(full, base)
    return out


@dataclass(frozen=True)
class DelayMultiChain:
    """The solved chain (its means: :func:`~.bulk_multi.multi_metrics` of ``chain``) and what
    the distributions need: per (shortest residual in grid steps, L < N) the windows the cycle
    opens, by (x₀ waiting, horizon θ_g), and the chance that it idles until an arrival."""

    chain: MultiChain
    delay: float
    h: float
    theta: F  # (G+1,) the horizons' grid
    opened: F  # (M+1, N, N, G+1)
    idled: F  # (M+1, N)
    spell: Ix  # (S,) each state's shortest residual, grid steps


def delay_chain(
    alpha: float,
    beta: float,
    n: int,
    k: int,
    rate: float,
    c: int,
    kappa: float,
    delay: float,
) -> DelayMultiChain:
    """Solve the chain of the module docstring (1 ≤ c, K ≥ 2N), with the waiting room only as
    large as the queue reaches (:func:`~.bulk_multi.in_room`)."""
    if k - n < n:
        raise ValueError(f"the waiting room K − N = {k - n} must hold a batch of N = {n}")
    tau = kappa * (alpha + beta * np.arange(n + 1, dtype=np.float64))
    m = DELAY_GRID.get(c, 12) if c > 1 else 32
    res, nxt, bw = _multisets(tuple(tau.tolist()), n, c, m)
    key = (alpha, beta, n, k, c, kappa, m, delay)
    return in_room(
        key,
        n,
        k,
        rate,
        lambda room: _solve(tau, n, rate, c, m, delay, res, nxt, bw, room, (*key, room)),
    )


@functools.lru_cache(maxsize=64)
def _multisets(tau_t: tuple[float, ...], n: int, c: int, m: int) -> tuple[Ix, Ix, F]:
    """Every residual multiset reachable from the empty replica, the state each goes to after a
    shift and a batch (:func:`_tables`, as indices), and the weights of τ(b)'s two grid points
    (they do not depend on the rate)."""
    tau = np.array(tau_t)
    h = float(tau[n]) / m
    base = m + 2
    b_lo, b_hi, b_w = _split(tau / h)
    bw = np.stack([1.0 - b_w, b_w], axis=-1)  # (N+1, 2)
    bw[0] = 0.0
    start = np.zeros((1, c), dtype=np.int64)
    seen: dict[int, int] = {}
    rows: list[Ix] = []
    codes: list[Ix] = []
    frontier = start
    while frontier.shape[0]:
        for r in _encode(frontier, base).tolist():
            seen[r] = len(seen)
        rows.append(frontier)
        cd = _tables(frontier, m, n, c, base, b_lo, b_hi)
        codes.append(cd)
        live = np.broadcast_to(bw[None, None, :, :] > 0, cd.shape)
        new = np.unique(cd[live])
        new = np.array([x for x in new.tolist() if x not in seen], dtype=np.int64)
        frontier = _decode(new, c, base)
    res = np.concatenate(rows)
    nxt = np.vectorize(seen.__getitem__, otypes=[np.int64])(
        np.where(
            np.broadcast_to(bw[None, None] > 0, (res.shape[0], m + 1, n + 1, 2)),
            np.concatenate(codes),
            _encode(start, base)[0],
        )
    )
    for x in (res, nxt, bw):
        x.flags.writeable = False
    return res, nxt, bw


@functools.lru_cache(maxsize=64)
def _by_point(tau_t: tuple[float, ...], n: int, c: int, m: int) -> tuple[F, Ix]:
    """A window's batch b' starts with its τ(b') split between two grid points, and the next
    multiset depends on b' only through that point: the weight of each point g per b', (N+1,
    G), and the next multiset per (multiset, shift, g), (S, M+1, G). A window's terms are summed
    per point (a product with the weights) rather than per (b', end): for N = 64 on a grid of 12
    steps, about a tenth as many go into the sparse matrix. They do not depend on the rate."""
    res, nxt, bw = _multisets(tau_t, n, c, m)
    tau = np.array(tau_t)
    b_lo, b_hi, _ = _split(tau / (float(tau[n]) / m))
    points = m + 2  # b_hi reaches M + 1 (with weight 0) at τ(N)
    weight = np.zeros((n + 1, points))
    start = int(np.flatnonzero(np.all(res == 0, axis=1))[0])
    nxt_g = np.full((res.shape[0], m + 1, points), start, dtype=np.int64)
    for jj, pts in enumerate((b_lo, b_hi)):
        for b in np.flatnonzero(bw[:, jj] > 0).tolist():
            weight[b, pts[b]] += bw[b, jj]
            nxt_g[:, :, pts[b]] = nxt[:, :, b, jj]
    for x in (weight, nxt_g):
        x.flags.writeable = False
    return weight, nxt_g


def _solve(
    tau: F,
    n: int,
    rate: float,
    c: int,
    m: int,
    delay: float,
    res: Ix,
    nxt: Ix,
    bw: F,
    room: int,
    reuse: tuple[object, ...] | None = None,
) -> DelayMultiChain:
    """The chain with at most ``room`` ≥ N waiting (arrivals beyond are turned away)."""
    h = float(tau[n]) / m
    nr = res.shape[0]
    width = room + 1
    win = _windows(n, rate, delay, h, m)
    idle_joint, idle_len, idle_area = _idle(n, rate, delay, h, m)
    t_ms: F = np.arange(m + 1, dtype=np.float64) * h  # the spell t, by grid step
    # per (t, L < N): the joint (shift, b') of the window that follows, its rewards, and the
    # chance of a full batch instead; the full batch's leftovers per (t, L, L')
    most = float(rate * t_ms.max())
    reach_a = max(int(most + 12.0 * np.sqrt(most) + 20.0), n + 1)
    pa = _poisson_pmf(reach_a, rate * t_ms)  # (M+1, A)
    opened = np.zeros((m + 1, n, n, win.theta.size))  # (t, L, x₀, θ_g): windows, not idle
    idled = np.zeros((m + 1, n))  # (t, L): the instance idles until an arrival
    theta = win.theta
    xs = np.arange(1, n, dtype=np.float64)
    idled[0, 0] = 1.0  # an instance free, nobody waiting
    lefts = np.arange(1, n)
    hz0 = _gamma_horizons(theta, lefts, 0.0, rate, delay)  # an instance free: a window at once
    opened[0, lefts, lefts] = hz0
    for ti in range(1, m + 1):  # every instance busy for t: X = L + A < N waiting at its end
        t = float(t_ms[ti])
        p = pa[ti, :n]
        idled[ti, 0] = p[0]
        opened[ti, 0, 1:] = p[1:, None] * _first_horizons(theta, t, xs, delay)
        hz = _gamma_horizons(theta, lefts, t, rate, delay)  # (N−1, G+1)
        for left in range(1, n):
            opened[ti, left, left:] = p[: n - left, None] * hz[left - 1][None, :]
    # what the windows and idle spells leave, per (t, L): one product over every (x₀, θ_g)
    cells = (n - 1) * theta.size
    wins = opened[:, :, 1:].reshape(-1, cells)
    jw = (wins @ win.joint[1:].reshape(cells, -1)).reshape(m + 1, n, m + 1, n + 1)
    jw += idled[:, :, None, None] * idle_joint[None, None]
    wlen = (wins @ win.length[1:].ravel()).reshape(m + 1, n) + idled * idle_len
    warea = (wins @ win.area[1:].ravel()).reshape(m + 1, n) + idled * idle_area
    # assemble
    src: list[Ix] = []
    dst: list[Ix] = []
    val: list[F] = []

    def add(s: Ix, d: Ix, v: F) -> None:
        keep = v > _TINY
        src.append(s[keep])
        dst.append(d[keep])
        val.append(v[keep])

    # per (multiset, L): the cycle's expected length, ∫ waiting, batch, τ(b), b·τ(b), losses
    cycle, area, started, work, charged, lost = np.zeros((6, nr, width))
    ti_r = res[:, 0]
    full = np.any(res == m, axis=1)
    ells = np.arange(width)
    bcount = np.arange(n + 1, dtype=np.float64)
    # windows: every multiset with L = 0, the full ones with L < N; summed per grid point
    point_w, nxt_g = _by_point(tuple(tau.tolist()), n, c, m)
    for ell in range(n):
        r = np.arange(nr) if ell == 0 else np.flatnonzero(full)
        j = jw[ti_r[r], ell]  # (R, M+1, N+1)
        # the batch a window closes holds the L waiting at least (and one at L = 0)
        b0 = max(ell, 1)
        wts = j[:, :, b0:] @ point_w[b0:]  # (R, M+1, G)
        s_idx = np.broadcast_to((r * width + ell)[:, None, None], wts.shape)
        add(s_idx.ravel(), (nxt_g[r] * width).ravel(), wts.ravel())
        cycle[r, ell] += wlen[ti_r[r], ell]
        area[r, ell] += warea[ti_r[r], ell]
        pb = j.sum(axis=1)  # (R, N+1)
        started[r, ell] += pb @ bcount
        work[r, ell] += pb @ tau
        charged[r, ell] += pb @ (bcount * tau)
    # full batches: from (r, L) with X = min(L + A, room) ≥ N, leaving X − N. L > 0 only
    # occurs where a full batch runs (the multiset holds τ(N)): the other rows are never
    # reached with L > 0, and are built at L = 0 only
    s_nodes = (_U_NODES + 1.0) / 2.0
    nf = nxt[:, 0, n, :]  # (S, 2): no shift, τ(N)
    arr = np.arange(reach_a)
    for fr, ls in ((np.flatnonzero(full), ells), (np.flatnonzero(~full), ells[:1])):
        q_raw = ls[:, None] + arr[None, :]  # (W, A)
        q = np.minimum(q_raw, room)
        chunk = max(1, _CHUNK_CELLS // (ls.size * reach_a))
        for lo in range(0, fr.size, chunk):
            r = fr[lo : lo + chunk]
            p = np.broadcast_to(pa[ti_r[r]][:, None, :], (r.size, ls.size, reach_a))
            p = np.where((q >= n)[None], p, 0.0)
            for jj in range(2):
                add(
                    np.broadcast_to(
                        (r[:, None, None] * width + ls[None, :, None]), p.shape
                    ).ravel(),
                    np.broadcast_to(
                        nf[r, jj][:, None, None] * width + (q - n)[None], p.shape
                    ).ravel(),
                    (p * bw[n, jj]).ravel(),
                )
            pf = p.sum(axis=2)
            sel = np.ix_(r, ls)
            started[sel] += pf * n
            work[sel] += pf * tau[n]
            charged[sel] += pf * n * tau[n]
            lost[sel] += np.einsum(
                "fwa,wa->fw", p, np.clip(q_raw - room, 0, None).astype(np.float64)
            )
    # the spell before the first instance frees: its length and ∫ waiting (every row)
    for ti in np.unique(ti_r[ti_r > 0]):
        r = np.flatnonzero(ti_r == ti)
        t = float(t_ms[ti])
        ps = _poisson_pmf(reach_a, rate * t * s_nodes)  # (nodes, A)
        q = np.minimum(ells[:, None] + np.arange(reach_a)[None, :], room).astype(np.float64)
        inner = (q @ ps.T) @ _U_WEIGHTS * (t / 2.0)  # (W,)
        cycle[r] += t
        area[r] += inner[None, :]
    origin = int(np.flatnonzero(np.all(res == 0, axis=1))[0]) * width
    reach, pi = stationary_from(src, dst, val, nr * width, origin, reuse)
    ri, li = np.divmod(reach, width)
    flat = [x.ravel()[reach] for x in (cycle, area, started, work, charged, lost)]
    times: F = res[ri].astype(np.float64) * h
    chain = MultiChain(n, c, rate, room, tau, times, li, pi, *flat)
    return DelayMultiChain(chain, delay, h, theta, opened, idled, res[ri, 0].copy())
