"""What one server may cost the model: its candidates' batch limits summed, at most
:data:`MAX_SERVER_BATCH_SUM` (docs/data-format.md)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ..model.profile_arrays import ProfileArrays, batch_size

F = NDArray[np.float64]
Idx = NDArray[np.intp]

__all__ = ["MAX_SERVER_BATCH_SUM", "within_batch_budget"]


#: the most a server's candidates' batch limits N may sum to: the model holds O(N) numbers per
#: candidate, so this bounds what one server costs whatever its data say. Real servers sum to
#: a few thousand (each of the large sample's under 1,000); a memory-scaled
#: N = ⌊maxBatchSize·atTokens/tokens⌋ at a thousandth of a token per request reaches 100,000 on
#: every accelerator (2.1 million numbers per row of the model's arrays)
MAX_SERVER_BATCH_SUM = 250_000


def within_batch_budget(
    prof: ProfileArrays,
    server_idx: Idx,
    profile_idx: Idx,
    out_tokens: F,
    overrides: F,
    reasons: list[str],
) -> tuple[Idx, Idx]:
    """The pairs of the servers whose candidates' batch limits sum to at most
    :data:`MAX_SERVER_BATCH_SUM`; each other server gets its reason and no candidate."""
    if not server_idx.size:
        return server_idx, profile_idx
    n = batch_size(prof.take(profile_idx), out_tokens[server_idx], overrides[server_idx])
    total = np.bincount(server_idx, weights=n, minlength=len(reasons))
    over = total > MAX_SERVER_BATCH_SUM
    if not over.any():
        return server_idx, profile_idx
    for s in np.flatnonzero(over).tolist():
        reasons[s] = (
            f"its candidates' batch limits sum to {total[s]:,.0f} (up to "
            f"{n[server_idx == s].max():,.0f} on one accelerator, from "
            f"{out_tokens[s]:.4g} tokens per request), more than the {MAX_SERVER_BATCH_SUM:,} "
            "the model sizes per server: check its tokens per request or its maxBatchSize"
        )
    keep = ~over[server_idx]
    return server_idx[keep], profile_idx[keep]
