"""Operating points: a profile, a request shape, a batch limit N and an occupancy limit K.

:class:`OperatingPoints` holds many points as arrays and evaluates the queue at given arrival rates
for all of them at once. Points are grouped by kind and, inside a kind, sorted by N and cut into
blocks, so that padding to the block's largest N wastes little and memory stays bounded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from . import _chain, _kinds, bulk_instances, percentiles
from ._blocks import blocks_of, width_groups
from ._bulk_rows import bulk_means, bulk_response
from ._kinds import KindArrays
from .bounds import MAX_BATCH, MAX_QUEUE, MIN_SERVICE_MS
from .profile_arrays import ProfileArrays, arrays_of, batch_size, optional_array
from .profiles import Kind, Profile, Tokens

F = NDArray[np.float64]
Idx = NDArray[np.intp]

__all__ = [
    "DEFAULT_QUEUE_FACTOR",
    "MAX_BATCH",
    "MAX_QUEUE",
    "MIN_SERVICE_MS",
    "Metrics",
    "OperatingPoints",
    "batch_and_queue",
    "chain_mu_1",
]

#: K = N + factor·N unless a queue length is given: Inferno's samples use K = 10N for G0 and
#: K = 11N (a queue of 10N) for the other kinds.
DEFAULT_QUEUE_FACTOR: dict[Kind, float] = {
    Kind.G0: 9.0,
    Kind.G1: 10.0,
    Kind.G2: 10.0,
    Kind.G3: 10.0,
    Kind.BATCH: 10.0,
}

_KINDS = list(Kind)


@dataclass(frozen=True, slots=True)
class Metrics:
    """Metrics of C points at their arrival rates; arrays of shape (C,), times in ms, rates /ms."""

    rate: F  # λ offered
    throughput: F  # X = λ (1 − p(K))
    response: F  # T = L / X
    service: F  # S = Ls / X
    wait: F  # W = max(T − S, 0)
    held: F  # L
    in_service: F  # Ls (mean batch occupancy n̄)
    utilization: F  # ρ = 1 − p(0)
    blocking: F  # p(K)
    itl: F  # inter-token latency (NaN for batch kind)
    ttft: F  # time to first token (NaN for batch kind)
    wait_sf: F  # P(W > t) at the times asked for (NaN when none were)

    def take(self, i: int) -> dict[str, float]:
        return {name: float(getattr(self, name)[i]) for name in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class _Block:
    index: Idx  # positions in the caller's order
    params: KindArrays
    logmu_cum: F  # (c, Nmax+1)
    n_batch: F
    n_tail: F
    log_mu_n: F
    mu_1: F
    bulk: NDArray[np.bool_]  # rows whose means come from the bulk model
    serving: F  # (c, 4): delay, instances, κ, virtual (1: bulk_instances' virtual instance)


class OperatingPoints:
    """C operating points evaluated together. Build with :meth:`build` or :meth:`of`."""

    def __init__(self, blocks: list[_Block], n_batch: F, n_max: F, mu_1: F, mu_n: F) -> None:
        self._blocks = blocks
        self._where: tuple[Idx, Idx] | None = None  # point -> (block, row), built on demand
        # one block already in the caller's order: metrics need no scatter
        self._in_order = len(blocks) == 1 and bool(
            np.array_equal(blocks[0].index, np.arange(blocks[0].index.size))
        )
        self.n_batch = n_batch  #: N per point
        self.n_max = n_max  #: K per point
        self.mu_1 = mu_1  #: μ(1) per point, /ms
        self.mu_n = mu_n  #: μ(N) per point, /ms

    def __len__(self) -> int:
        return int(self.n_batch.shape[0])

    @classmethod
    def of(
        cls,
        profiles: Sequence[Profile],
        tokens: Sequence[Tokens],
        *,
        batch: Sequence[int | None] | None = None,
        max_queue: Sequence[int | None] | None = None,
        queue_factor: float | None = None,
    ) -> OperatingPoints:
        """Points from profile objects (one per point); ``batch`` overrides N, ``max_queue``
        K − N."""
        prof, in_tokens, out_tokens = arrays_of(profiles, tokens)
        return cls.build(
            prof,
            in_tokens,
            out_tokens,
            batch=optional_array(batch),
            max_queue=optional_array(max_queue),
            queue_factor=queue_factor,
        )

    @classmethod
    def build(
        cls,
        prof: ProfileArrays,
        in_tokens: F,
        out_tokens: F,
        *,
        batch: F | None = None,
        max_queue: F | None = None,
        queue_factor: float | None = None,
        widths: F | None = None,
    ) -> OperatingPoints:
        """Points from arrays of shape (C,). NaN in ``batch``/``max_queue`` means the default.

        ``widths``: each point's block width (as
        :func:`~inferno.model.profile_arrays.block_widths` gives it for an earlier build) instead
        of the blocks cut here: a point's sums then run over the same columns as in that build,
        so that it evaluates to the same bits whatever other points are built with it."""
        c = prof.kind.shape[0]
        n, queue = batch_and_queue(prof, out_tokens, batch, max_queue, queue_factor)
        blocks: list[_Block] = []
        mu_1 = np.empty(c)
        mu_n = np.empty(c)
        groups = blocks_of(prof.kind, n) if widths is None else width_groups(prof.kind, widths)
        for code, idx, width in groups:
            block = _make_block(
                _KINDS[code],
                prof.take(idx),
                in_tokens[idx],
                out_tokens[idx],
                n[idx],
                queue[idx],
                idx,
                width,
            )
            blocks.append(block)
            mu_1[idx] = block.mu_1
            mu_n[idx] = np.exp(block.log_mu_n)
        return cls(blocks, n, n + queue, mu_1, mu_n)

    def metrics(self, rate: F | float, *, wait_beyond: F | None = None) -> Metrics:
        """Metrics of every point at arrival rate(s) ``rate`` (/ms, > 0).

        With ``wait_beyond`` (ms, per point; NaN to skip a point) ``wait_sf`` is P(W > that time).
        """
        shape = self.n_batch.shape
        lam = np.array(np.broadcast_to(np.asarray(rate, dtype=np.float64), shape))
        if len(self._blocks) == 1 and self._in_order:
            beyond = None if wait_beyond is None else np.broadcast_to(wait_beyond, shape)
            return Metrics(**self._block_metrics(self._blocks[0], lam, beyond))
        out = {name: np.empty(len(self)) for name in Metrics.__dataclass_fields__}
        for b in self._blocks:
            beyond = None if wait_beyond is None else np.broadcast_to(wait_beyond, shape)[b.index]
            m = self._block_metrics(b, lam[b.index], beyond)
            for name, values in m.items():
                out[name][b.index] = values
        return Metrics(**out)

    #: whether :meth:`itl` is less work than :meth:`metrics` (the λ* search then asks for the
    #: ITL alone where it is the target searched)
    itl_alone: ClassVar[bool] = False

    def itl(self, rate: F) -> F:
        """The mean ITL of every point at ``rate`` (/ms): :meth:`metrics`' ``itl``."""
        return self.metrics(rate).itl

    def may_fall(self) -> NDArray[np.bool_]:
        """Points whose metrics may fall as the rate grows somewhere below their capacity (the
        chain's never do: every one grows with λ). :func:`~inferno.model.sizing.size` checks
        lower rates for them."""
        return np.zeros(len(self), dtype=bool)

    def costly(self) -> NDArray[np.bool_]:
        """Points whose every evaluation solves a large chain — c > 1 model instances
        (:mod:`.bulk_multi`, :mod:`.bulk_multi_delay`): tenths of a second per rate, seconds near
        saturation. :func:`~inferno.model.sizing.size` probes them below their capacity first."""
        out = np.zeros(len(self), dtype=bool)
        for b in self._blocks:
            d, c, _, virtual = b.serving.T
            fast = (virtual > 0) & (d > 0)
            out[b.index] = b.bulk & bulk_instances.costly(d, c) & ~fast
        return out

    def delayed(self) -> NDArray[np.bool_]:
        """Batch-kind points with a batching delay (those :meth:`virtual_instances` changes when
        they run c > 1 instances)."""
        out = np.zeros(len(self), dtype=bool)
        for b in self._blocks:
            out[b.index] = b.bulk & (b.serving[:, 0] > 0)
        return out

    def virtual_instances(self, which: NDArray[np.bool_] | None = None) -> OperatingPoints:
        """The same points, with c > 1 instances *and a delay* evaluated on the virtual-instance
        approximation (:func:`~.bulk_instances.serving_metrics`' ``virtual``; only the points
        ``which`` says, default all): its means cost tens to hundreds of times less per rate
        than the chain's; pessimistic near saturation with a delay of half a batch or more,
        optimistic with a much shorter one. The serving decision screens its options this way;
        the allocation is sized on the chain."""
        flag = np.ones(len(self)) if which is None else np.asarray(which, dtype=np.float64)
        blocks = [
            replace(b, serving=np.column_stack([b.serving[:, :3], flag[b.index]]))
            for b in self._blocks
        ]
        return OperatingPoints(blocks, self.n_batch, self.n_max, self.mu_1, self.mu_n)

    def ttft_sf(self, rate: F, t: F, *, metrics: Metrics | None = None) -> F:
        """P(TTFT > ``t``) per point at ``rate`` (NaN where ``t`` is NaN). Here TTFT is the wait
        plus a constant (the prefill at the mean occupancy, + one ITL for G2/G3), so it is the
        wait's survival at t − that constant; a model whose first-token time depends on what an
        arrival finds overrides it. ``metrics``: ``self.metrics(rate)`` if the caller has it."""
        m = self.metrics(rate) if metrics is None else metrics
        sf: F = self.metrics(rate, wait_beyond=t - (m.ttft - m.wait)).wait_sf
        return sf

    def subset(self, idx: Idx, *, same_width: bool = False) -> OperatingPoints:
        """The points at ``idx`` (in that order, repeats allowed), without recomputing τ.

        ``same_width`` keeps each block's columns as they are (not cut to the subset's largest
        batch): the metrics are then bit-for-bit the ones of the whole set (sums over rows of
        another length round differently in the last bits)."""
        idx = np.asarray(idx, dtype=np.intp)
        if self._where is None:
            block_of = np.empty(len(self), dtype=np.intp)
            row_of = np.empty(len(self), dtype=np.intp)
            for k, b in enumerate(self._blocks):
                block_of[b.index] = k
                row_of[b.index] = np.arange(b.index.size)
            self._where = (block_of, row_of)
        block_of, row_of = self._where
        blk, row = block_of[idx], row_of[idx]
        blocks = []
        for k, b in enumerate(self._blocks):
            sel = np.flatnonzero(blk == k)
            if sel.size == 0:
                continue
            keep = row[sel]
            width = b.logmu_cum.shape[1] if same_width else int(b.n_batch[keep].max()) + 1
            blocks.append(
                _Block(
                    index=sel,
                    params=b.params.take(keep),
                    logmu_cum=b.logmu_cum[keep, :width],
                    n_batch=b.n_batch[keep],
                    n_tail=b.n_tail[keep],
                    log_mu_n=b.log_mu_n[keep],
                    mu_1=b.mu_1[keep],
                    bulk=b.bulk[keep],
                    serving=b.serving[keep],
                )
            )
        return OperatingPoints(
            blocks, self.n_batch[idx], self.n_max[idx], self.mu_1[idx], self.mu_n[idx]
        )

    @staticmethod
    def _block_metrics(b: _Block, lam: F, beyond: F | None) -> dict[str, F]:
        st = _chain.solve(lam, b.logmu_cum, b.n_batch, b.n_tail, b.log_mu_n)
        wait_sf = np.full(lam.shape, np.nan)
        if beyond is not None:
            ask = np.isfinite(beyond)
            if ask.any():
                wait_sf[ask] = percentiles.wait_survival(
                    np.maximum(beyond[ask], 0.0),
                    st.p_batch[ask],
                    st.p_full[ask],
                    st.log_ratio[ask],
                    np.exp(b.log_mu_n[ask]),
                    b.n_tail[ask],
                )
                wait_sf[ask & (beyond < 0)] = 1.0
        x = st.throughput
        response = st.held / x
        service = st.in_service / x
        wait = np.maximum(response - service, 0.0)
        itl, ttft = _kinds.report(b.params, b.n_batch, service, wait, st.in_service)
        out = {
            "rate": lam,
            "throughput": x,
            "response": response,
            "service": service,
            "wait": wait,
            "held": st.held,
            "in_service": st.in_service,
            "utilization": 1.0 - st.p0,
            "blocking": st.p_full,
            "itl": itl,
            "ttft": ttft,
            "wait_sf": wait_sf,
        }
        if b.bulk.any():
            bulk_means(out, b, lam, beyond)
        return out

    def wait_tail(self, rate: F) -> tuple[NDArray[np.bool_], tuple[F, F, F, F, F]]:
        """What the chain's P(W > t) depends on at ``rate`` (per point): (``chain``, (p(N), p(K),
        log λ/μ(N), μ(N), K − N)), the arguments of :func:`.percentiles.wait_survival` after t.
        ``chain`` is False on the rows whose wait is not the chain's (the bulk model's); their
        values are NaN. Solves each block once, where :meth:`metrics` would per call."""
        lam = np.broadcast_to(np.asarray(rate, dtype=np.float64), self.n_batch.shape)
        chain = np.zeros(len(self), dtype=bool)
        out = tuple(np.full(len(self), np.nan) for _ in range(5))
        for b in self._blocks:
            st = _chain.solve(lam[b.index], b.logmu_cum, b.n_batch, b.n_tail, b.log_mu_n)
            values = (st.p_batch, st.p_full, st.log_ratio, np.exp(b.log_mu_n), b.n_tail)
            for o, v in zip(out, values, strict=True):
                o[b.index] = np.where(b.bulk, np.nan, v)
            chain[b.index] = ~b.bulk
        p_batch, p_full, log_r, mu_n, n_tail = out
        return chain, (p_batch, p_full, log_r, mu_n, n_tail)

    def distribution(self, i: int, rate: float) -> F:
        """p(0..K) of point ``i`` at arrival rate ``rate``."""
        b, j = self._locate(i)
        return _chain.distribution(
            rate, b.logmu_cum[j], int(b.n_batch[j]), int(b.n_tail[j]), float(b.log_mu_n[j])
        )

    def response_time(
        self, i: int, rate: float
    ) -> percentiles.ResponseTime | bulk_instances.ServingTime:
        """The response-time distribution of point ``i`` at arrival rate ``rate``."""
        b, j = self._locate(i)
        if b.bulk[j]:
            return bulk_response(b, j, rate)
        return percentiles.ResponseTime(
            rate, self.tau_of(i), int(self.n_max[i]), self.distribution(i, rate)
        )

    def response_key(self, i: int, rate: float) -> tuple[bool, float, int, bytes]:
        """What :meth:`response_time` of point ``i`` at ``rate`` depends on: equal keys, equal
        distributions (servers of one model, GPU type and load in several classes share one)."""
        b, j = self._locate(i)
        key = self.tau_of(i).tobytes() + b.serving[j].tobytes()
        return bool(b.bulk[j]), rate, int(self.n_max[i]), key

    def tau_of(self, i: int) -> F:
        """τ(1..N) of point ``i``."""
        b, j = self._locate(i)
        n = int(b.n_batch[j])
        mu = np.exp(np.diff(b.logmu_cum[j, : n + 1]))
        out: F = np.arange(1, n + 1) / mu
        return out

    def _locate(self, i: int) -> tuple[_Block, int]:
        for b in self._blocks:
            hit = np.flatnonzero(b.index == i)
            if hit.size:
                return b, int(hit[0])
        raise IndexError(i)


def batch_and_queue(
    prof: ProfileArrays,
    out_tokens: F,
    batch: F | None = None,
    max_queue: F | None = None,
    queue_factor: float | None = None,
) -> tuple[F, F]:
    """N and the queue beyond it, K − N, of each point as :meth:`OperatingPoints.build` takes
    them (NaN in ``batch``/``max_queue``: the default)."""
    c = prof.kind.shape[0]
    n = batch_size(prof, out_tokens, batch)
    factor = np.array([DEFAULT_QUEUE_FACTOR[k] for k in _KINDS])[prof.kind]
    if queue_factor is not None:
        factor = np.full(c, float(queue_factor))
    queue = factor * n
    if max_queue is not None:
        queue = np.where(np.isfinite(max_queue), np.maximum(max_queue, 0.0), queue)
    return n, np.floor(np.minimum(queue, MAX_QUEUE))


def chain_mu_1(prof: ProfileArrays, in_tokens: F, out_tokens: F) -> F:
    """μ(1) of each point as :meth:`OperatingPoints.build` computes it, the same operations on
    the first column alone (without building the chain)."""
    mu_1 = np.empty(prof.kind.shape[0])
    for code in np.unique(prof.kind).tolist():
        idx = np.flatnonzero(prof.kind == code)
        p = prof.take(idx)
        params = p.kind_arrays(_KINDS[code], in_tokens[idx], out_tokens[idx])
        b = np.ones((idx.size, 1))
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.maximum(_kinds.tau(params, b), MIN_SERVICE_MS)
            one = np.exp((np.log(b) - np.log(t))[:, 0])
        many = _many_instances(p)
        if many.any():
            one[many] *= p.instances[many] / p.kappa[many]
        mu_1[idx] = one
    return mu_1


def _many_instances(prof: ProfileArrays) -> NDArray[np.bool_]:
    """The batch kind's points served by several instances (their capacity scales)."""
    out: NDArray[np.bool_] = (prof.bulk > 0) & (prof.instances > 1)
    return out


def _make_block(
    kind: Kind,
    prof: ProfileArrays,
    in_tokens: F,
    out_tokens: F,
    n: F,
    queue: F,
    idx: Idx,
    width: int,
) -> _Block:
    params = prof.kind_arrays(kind, in_tokens, out_tokens)
    nmax = width - 1  # ≥ n.max(): the columns past a point's own N are padding
    b = np.broadcast_to(np.arange(1, nmax + 1, dtype=np.float64), (n.size, nmax))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.maximum(_kinds.tau(params, b), MIN_SERVICE_MS)  # NaN stays NaN
        log_mu = np.log(b) - np.log(t)
    log_mu = np.where(b <= n[:, None], log_mu, np.inf)
    # Σ_{i≤n} log μ(i) with −log μ past N made +inf by the cumulative sum of +inf terms
    cum = np.concatenate([np.zeros((n.size, 1)), np.cumsum(log_mu, axis=1)], axis=1)
    rows = np.arange(n.size)
    log_mu_n = log_mu[rows, n.astype(np.intp) - 1]
    mu_1 = np.exp(log_mu[:, 0])
    serving = np.column_stack([prof.delay, prof.instances, prof.kappa, np.zeros(n.size)])
    many = _many_instances(prof)
    if many.any():  # c instances at κ(c) each: c/κ(c) times one instance's capacity
        gain = prof.instances[many] / prof.kappa[many]
        log_mu_n[many] += np.log(gain)
        mu_1[many] *= gain
    return _Block(
        index=idx,
        params=params,
        logmu_cum=cum,
        n_batch=n,
        n_tail=queue,
        log_mu_n=log_mu_n,
        mu_1=mu_1,
        bulk=prof.bulk > 0,
        serving=serving,
    )
