"""Triton dynamic batching with a batching delay and several model instances: the entry point.

One model instance (c = 1): with no delay the exact model of :mod:`.bulk`, unchanged; with a
delay D > 0 the chain at batch starts of :mod:`.bulk_delay` and the distributions of
:mod:`.bulk_delay_time`.

c > 1 instances share one queue; each batch takes κ(c)·(α + β·b). For c ≤
:data:`~.bulk_multi.MAX_EXACT_INSTANCES` the chain over the instances' residual batch times:
:mod:`.bulk_multi` with no delay, :mod:`.bulk_multi_delay` (and :mod:`.bulk_multi_delay_time`)
with one, when the waiting room holds a batch (K ≥ 2N). Both are within 2 % of the emulator on
the mean and 5 % on p95 up to 95 % of the capacity (bench/serving_config_accuracy.py).

Otherwise — more instances, a smaller room, or ``virtual=True`` with a delay — an
approximation: the c instances are one *virtual* instance that starts a batch every
κ(c)·τ(b)/c — the rate at which c busy instances free up — so that the queue, the batch sizes
and the windows of the delay are those of :mod:`.bulk_delay` on batch times κ(c)·τ(b)/c; each
request is then charged the real batch time κ(c)·τ(b) instead of the virtual one. It has the
right capacity (c·N/(κ·τ(N))) and its means cost tens to hundreds of times less than the chain's
(bench/instance_models.py). With a delay of half a batch
or more it is within 0.6 % of the emulator up to load 0.6 and pessimistic by 3–4 % on the mean
(up to 6 % on p95) at loads 0.9–0.95; with a delay much shorter than a batch it behaves as with
none, where it misses that free instances start batches of one or two at once and stay busy
with them (optimistic by up to 14 % on the mean and 23 % on p95 at c = 4). The serving decision
screens its options on it and sizes the allocation on the chain
(:meth:`~.points.OperatingPoints.virtual_instances`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from . import bulk_multi, bulk_multi_delay
from .bulk import BulkMetrics, BulkResponseTime, _solved
from .bulk_delay import delay_metrics
from .bulk_delay_time import DelayResponseTime
from .bulk_multi import MAX_EXACT_INSTANCES, multi_chain, multi_metrics
from .bulk_multi_delay import delay_chain
from .bulk_multi_delay_time import MultiDelayTime
from .bulk_multi_time import MultiResponseTime

__all__ = ["ServingTime", "costly", "serving_metrics", "serving_time"]

ServingTime = BulkResponseTime | DelayResponseTime | MultiResponseTime | MultiDelayTime

#: the means of the last solved residual-time chains, by their arguments: a search sizes the same
#: option again at the same rates (a decision's, then the solver's tighter one)
_MEMO: OrderedDict[tuple[float, ...], BulkMetrics] = OrderedDict()
_MEMO_SIZE = 4096
_MEMO_LOCK = threading.Lock()


def clear_memo() -> None:
    """Forget the memoised chains' means and the rooms they needed (tests that change how a
    chain is solved; a bench timing a first decision)."""
    with _MEMO_LOCK:
        _MEMO.clear()
    bulk_multi.clear_rooms()


def costly(delay: NDArray[np.float64], instances: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Which (delay, instances) rows solve a residual-time chain (:mod:`.bulk_multi`,
    :mod:`.bulk_multi_delay`) per rate: tenths of a second to seconds, the more the nearer
    saturation. ``delay`` is not needed: c instances, with or without one."""
    del delay
    out: NDArray[np.bool_] = (instances > 1) & (instances <= MAX_EXACT_INSTANCES)
    return out


def _multi(delay: float, c: int) -> bool:
    """No delay and a few instances: the residual-time chain of :mod:`.bulk_multi`."""
    return delay == 0 and 1 < c <= MAX_EXACT_INSTANCES


def _multi_delay(delay: float, c: int, n: int, k: int) -> bool:
    """A delay, a few instances and a waiting room that holds a batch: the chain of
    :mod:`.bulk_multi_delay`."""
    return delay > 0 and 1 < c <= MAX_EXACT_INSTANCES and k - n >= n


def _check(
    alpha: float, beta: float, n: int, k: int, rate: float, delay: float, c: int, kappa: float
) -> None:
    if not (alpha >= 0 and beta >= 0 and alpha + beta > 0):
        raise ValueError(f"need α, β ≥ 0 and α + β > 0, got α={alpha}, β={beta}")
    if n < 1 or k < n:
        raise ValueError(f"need 1 ≤ N ≤ K, got N={n}, K={k}")
    if not (rate > 0 and rate < float("inf")):
        raise ValueError(f"the arrival rate must be > 0, got {rate}")
    if not delay >= 0 or c < 1 or not kappa >= 1:
        raise ValueError(f"need delay ≥ 0, c ≥ 1, κ ≥ 1, got {delay}, {c}, {kappa}")


def _scaled(m: BulkMetrics, c: int) -> BulkMetrics:
    """The virtual instance's metrics with each request charged the real batch time."""
    service = c * m.service
    response = m.wait + service
    return replace(m, response=response, service=service, in_system=m.throughput * response)


def serving_metrics(
    alpha: float,
    beta: float,
    n: int,
    k: int,
    rate: float,
    *,
    delay: float = 0.0,
    instances: int = 1,
    kappa: float = 1.0,
    virtual: bool = False,
) -> BulkMetrics:
    """Metrics of a replica: batches of up to ``n`` taking κ·(α + β·b) ms on ``instances``
    instances, batching delay ``delay`` ms, at most ``k`` requests held, Poisson ``rate``/ms.
    ``avg_batch`` is per batch and ``utilization`` per instance. ``virtual``: c > 1 with a delay
    on the virtual instance rather than the chain (module docstring)."""
    _check(alpha, beta, n, k, rate, delay, instances, kappa)
    if delay == 0 and instances == 1:
        return _solved(alpha, beta, n, k, rate)[0]
    if _multi(delay, instances) or (not virtual and _multi_delay(delay, instances, n, k)):
        grid = (bulk_multi.GRID if delay == 0 else bulk_multi_delay.DELAY_GRID)[instances]
        key = (alpha, beta, n, k, rate, instances, kappa, grid, delay)
        with _MEMO_LOCK:
            m = _MEMO.get(key)
        if m is None:
            ch = (
                multi_chain(alpha, beta, n, k, rate, instances, kappa)
                if delay == 0
                else delay_chain(alpha, beta, n, k, rate, instances, kappa, delay).chain
            )
            m = multi_metrics(ch)
            with _MEMO_LOCK:
                _MEMO[key] = m
                while len(_MEMO) > _MEMO_SIZE:
                    _MEMO.popitem(last=False)
        return m
    s = kappa / instances
    m, _ = delay_metrics(s * alpha, s * beta, n, k, rate, delay)
    return _scaled(m, instances)


def serving_time(
    alpha: float,
    beta: float,
    n: int,
    k: int,
    rate: float,
    *,
    delay: float = 0.0,
    instances: int = 1,
    kappa: float = 1.0,
    virtual: bool = False,
) -> ServingTime:
    """The response-time and wait distributions (``survival``, ``wait_survival``, ``metrics``)
    of :func:`serving_metrics`' replica."""
    _check(alpha, beta, n, k, rate, delay, instances, kappa)
    if delay == 0 and instances == 1:
        return BulkResponseTime(alpha, beta, n, k, rate)
    if _multi(delay, instances):
        multi = multi_chain(alpha, beta, n, k, rate, instances, kappa)
        return MultiResponseTime(multi, multi_metrics(multi))
    if not virtual and _multi_delay(delay, instances, n, k):
        dc = delay_chain(alpha, beta, n, k, rate, instances, kappa, delay)
        return MultiDelayTime(dc, multi_metrics(dc.chain))
    s = kappa / instances
    m, chain = delay_metrics(s * alpha, s * beta, n, k, rate, delay)
    return DelayResponseTime(chain, _scaled(m, instances), service_scale=instances)
