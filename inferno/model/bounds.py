"""The bounds the model itself enforces (numbers only: importing this loads nothing else, so the
data layer can check its inputs against the same values without loading numpy)."""

from __future__ import annotations

__all__ = ["MAX_BATCH", "MAX_QUEUE", "MIN_SERVICE_MS"]

#: the largest batch limit N the model works with: ⌊maxBatchSize·atTokens/tokens⌋ (which a short
#: request shape can make arbitrarily large) and every override are capped here, which bounds the
#: O(C·N) arrays of a block (inferno.data.limits checks the inputs against the same value)
MAX_BATCH = 100_000
#: the shortest time τ(b) a batch takes (ms): a profile and a request shape that give less (a G0
#: avgLength of 0, a subnormal α) would make μ(b) = b/τ(b) overflow; nothing real is that fast
MIN_SERVICE_MS = 1e-9
#: the largest queue K − N: the default factor·N and every override are capped here (the wait's
#: survival function sums over the queue's states)
MAX_QUEUE = 1_000_000
