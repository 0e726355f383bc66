"""The batch kind's rows of :class:`~inferno.model.points.OperatingPoints`: their means and
response-time distributions from Triton's dynamic batching (:mod:`.bulk`), or with a batching
delay or several model instances (:mod:`.bulk_instances`), one row at a time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import ThreadpoolController

from . import bulk, bulk_instances
from ._kinds import KindArrays

if TYPE_CHECKING:
    from .points import _Block

F = NDArray[np.float64]

__all__ = ["BULK_QUEUE_BATCHES", "BULK_QUEUE_MIN", "bulk_means", "bulk_response", "one_blas_thread"]


_THREADPOOLS: list[ThreadpoolController] = []


def one_blas_thread() -> Any:
    """BLAS held to one thread (the controller scans the loaded libraries once, not per call)."""
    if not _THREADPOOLS:
        _THREADPOOLS.append(ThreadpoolController())
    return _THREADPOOLS[0].limit(limits=1, user_api="blas")


#: the bulk model's state space is at most this many batches beyond N (see bulk_means)
BULK_QUEUE_BATCHES = 4
BULK_QUEUE_MIN = 64


def bulk_means(out: dict[str, F], b: _Block, lam: F, beyond: F | None = None) -> None:
    """Replace the chain's means by those of Triton's dynamic batching (:mod:`.bulk`).

    The batch kind's server never lets a request join a running batch; the chain does, and is
    optimistic by about 30 % (docs/accuracy.md). The wait's survival (``wait_sf``) and the
    response-time distribution (:meth:`OperatingPoints.response_time`) are the bulk model's too
    (:class:`~inferno.model.bulk.BulkResponseTime`). The bulk chain is solved with at most
    K' = min(K, N + max(4N, 64)) requests in the system: exact wherever the queue rarely holds
    more than four batches, i.e. everywhere but the last percent before saturation, where
    every latency target is long missed.
    """
    p = b.params
    # small dense solves: BLAS threads only contend (seconds lost on 2 busy cores)
    with one_blas_thread():
        _bulk_rows(out, b, p, lam, beyond)


def _bulk_limits(b: _Block, i: int) -> tuple[int, int]:
    """N and the capped K' of row ``i`` of a block (see :func:`bulk_means`)."""
    n = int(b.n_batch[i])
    k = int(min(b.n_batch[i] + b.n_tail[i], n + max(BULK_QUEUE_BATCHES * n, BULK_QUEUE_MIN)))
    return n, k


def _serving(b: _Block, i: int) -> dict[str, Any]:
    """The delay, instances, κ and model of row ``i`` (batch kind), as keywords."""
    d, c, kappa, virtual = (float(v) for v in b.serving[i])
    return {"delay": d, "instances": int(c), "kappa": kappa, "virtual": virtual > 0}


def _plain(b: _Block, i: int) -> bool:
    """Row ``i`` has no delay and one instance: the model of :mod:`.bulk` as it always was."""
    return bool(b.serving[i, 0] == 0.0 and b.serving[i, 1] == 1.0)


def bulk_response(b: _Block, i: int, rate: float) -> bulk_instances.ServingTime:
    n, k = _bulk_limits(b, i)
    alpha, beta = float(b.params.alpha[i]), float(b.params.beta[i])
    with one_blas_thread():
        if _plain(b, i):
            return bulk.BulkResponseTime(alpha, beta, n, k, rate)
        return bulk_instances.serving_time(alpha, beta, n, k, rate, **_serving(b, i))


def _bulk_rows(
    out: dict[str, F], b: _Block, p: KindArrays, lam: F, beyond: F | None = None
) -> None:
    rows = np.flatnonzero(b.bulk)
    if rows.size > 1:
        # rows of one chain in a row, by rate: a chain solve borrows the factorisation of the
        # last solve of the same chain (_stationary.stationary_from), and the solver asks the
        # means of every server's replicas at once, servers of many chains interleaved
        keys = [lam[rows], *(b.serving[rows, j] for j in range(b.serving.shape[1]))]
        keys += [b.n_batch[rows], b.n_tail[rows], p.beta[rows], p.alpha[rows]]
        rows = rows[np.lexsort(keys)]
    for i in rows:
        if not lam[i] > 0:
            continue
        n, k = _bulk_limits(b, int(i))
        if not _plain(b, int(i)):
            _serving_row(out, b, p, lam, beyond, int(i), n, k)
            continue
        if beyond is not None and np.isfinite(beyond[i]):
            rt = bulk.BulkResponseTime(float(p.alpha[i]), float(p.beta[i]), n, k, float(lam[i]))
            m = rt.metrics
            out["wait_sf"][i] = float(rt.wait_survival([max(float(beyond[i]), 0.0)])[0])
            if beyond[i] < 0:
                out["wait_sf"][i] = 1.0
        else:
            m = bulk.bulk_metrics(float(p.alpha[i]), float(p.beta[i]), n, k, float(lam[i]))
        _put(out, int(i), m)


def _serving_row(
    out: dict[str, F], b: _Block, p: KindArrays, lam: F, beyond: F | None, i: int, n: int, k: int
) -> None:
    """A batch-kind row with a delay or several instances (:mod:`.bulk_instances`)."""
    args = (float(p.alpha[i]), float(p.beta[i]), n, k, float(lam[i]))
    if beyond is not None and np.isfinite(beyond[i]):
        rt = bulk_instances.serving_time(*args, **_serving(b, i))
        m = rt.metrics
        out["wait_sf"][i] = 1.0 if beyond[i] < 0 else float(rt.wait_survival([beyond[i]])[0])
    else:
        m = bulk_instances.serving_metrics(*args, **_serving(b, i))
    _put(out, i, m)


def _put(out: dict[str, F], i: int, m: bulk.BulkMetrics) -> None:
    out["throughput"][i] = m.throughput
    out["response"][i] = m.response
    out["service"][i] = m.service
    out["wait"][i] = m.wait
    out["held"][i] = m.in_system
    out["in_service"][i] = m.throughput * m.service
    out["utilization"][i] = m.utilization
    out["blocking"][i] = m.blocking
