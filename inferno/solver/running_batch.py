"""The running batch kept *and sized for*: a server's ``batchTolerance`` (the controller's
``INFERNO_BATCH_TOLERANCE``) asks the solver to keep the batch a server runs on its running
accelerator when the batch it would choose there moves it by at most that fraction, and to size
the candidate at the batch kept — so the replicas are those of the batch that runs. A running
batch that no longer fits in memory (the measured tokens beyond its fit by more than
:data:`~inferno.model.profile_arrays.MEMORY_SLACK`) is not kept here: the solver sizes for the
smaller batch, and the actuator's own rule may still keep the running one, with a batch step of
capacity to spare (docs/control-policy.md, "The batch kept is the batch sized for")."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ..model.profile_arrays import MEMORY_SLACK, ProfileArrays, batch_limit, optional_array
from ..system import System

__all__ = ["keep_running_batch"]

F = NDArray[np.float64]


def keep_running_batch(
    system: System,
    server_idx: NDArray[np.intp],
    acc_i: NDArray[np.intp],
    acc_names: list[str],
    prof: ProfileArrays,
    out_tok: F,
    batch: F,
) -> F:
    """``batch`` with each server's running batch kept on its running accelerator where the
    server asks for it (``batchTolerance``): when the batch decided there moves it by at most
    that fraction, and it still fits in memory at the measured tokens less
    :data:`MEMORY_SLACK`. The candidate is then *sized* at the batch it keeps running, so a
    kept batch is never paid for as another one (the actuator's own hysteresis,
    :func:`~inferno.cluster.plan.steady_batch`, only keeps a batch: it cannot re-size)."""
    servers = system.servers
    if not server_idx.size or all(s.batch_tolerance is None for s in servers):
        return batch
    index = {name: i for i, name in enumerate(acc_names)}
    tol = optional_array([s.batch_tolerance for s in servers])[server_idx]
    running = np.array([s.current.max_batch for s in servers], dtype=np.float64)[server_idx]
    on = np.array([index.get(s.current.accelerator, -1) for s in servers], dtype=np.intp)
    pinned = np.isfinite(optional_array([s.max_batch_size for s in servers]))[server_idx]
    fits = batch_limit(prof, out_tok * (1.0 - MEMORY_SLACK))
    keep = (
        np.isfinite(tol)
        & ~pinned
        & (running > 0)
        & (acc_i == on[server_idx])
        & (np.abs(batch - running) <= np.where(np.isfinite(tol), tol, 0.0) * running)
        & (running <= fits)
    )
    return np.where(keep, running, batch)
