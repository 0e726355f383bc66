"""The bounds of every number Inferno reads from a user's files (docs/data-format.md, "Limits").

Every value is checked to be finite and within these bounds before it reaches the model, so that
no input can make the model or the solver overflow, allocate without bound or run for ever. The
bounds are far beyond any real system; each says what it protects. Some are also enforced inside
the model itself (the model cannot import this package), and are taken from there so that the
two never disagree.
"""

from __future__ import annotations

import sys
from typing import Final

from ..model import bounds as points

__all__ = [
    "MAX_ARRIVAL_RATE",
    "MAX_BATCH_SIZE",
    "MAX_COST",
    "MAX_COUNT",
    "MAX_INT_DIGITS",
    "MAX_MILP_TIME_LIMIT",
    "MAX_NESTING",
    "MAX_PROFILE_PARAMETER",
    "MAX_QUANTITY",
    "MAX_QUEUE_FACTOR",
    "MAX_QUEUE_SIZE",
    "MAX_RPS",
    "MAX_TIME_MS",
    "MAX_TOKENS",
    "MAX_TPS",
    "MAX_TRITON_BATCH_SIZE",
    "MIN_TIME_MS",
    "MIN_TOKENS",
]

#: requests per minute: a server's ``arrivalRate`` (and every rate of a simulate scenario)
MAX_ARRIVAL_RATE: Final = 1e9
#: requests per second: the analyzer's ``RPS`` (the same bound)
MAX_RPS: Final = MAX_ARRIVAL_RATE / 60.0
#: tokens per request: ``avgLength``, ``avgInTokens``, ``avgOutTokens``, ``atTokens``,
#: ``maxNumTokens`` and the analyzer's token counts
MAX_TOKENS: Final = 1e7
#: the smallest positive token count (0 stays allowed): a mean of a thousandth of a token is no
#: request shape, and smaller ones make the demand of an ``slo-tps`` class (TPS / tokens) overflow
MIN_TOKENS: Final = 1e-3
#: a batch size (``maxBatchSize`` of a profile or a server, ``currentAlloc.maxBatch``) of the LLM
#: kinds and of the batch kind with ``batching: "chain"``: the birth-death chain holds
#: O(C·N) numbers for C candidates (measured: ``inferno optimize`` of one server at N = 100,000,
#: 0.7 s and 96 MB peak RSS, at any load). The memory-scaled limit
#: ⌊maxBatchSize·atTokens/tokens⌋ is capped at the same value inside the model.
MAX_BATCH_SIZE: Final = points.MAX_BATCH
#: a batch size of the batch kind with Triton's batching (the default): the bulk-service model
#: (inferno.model.bulk) solves a dense chain of up to 5N states, O(N²) memory and O(N³) time
#: (measured, one server: N = 128, 0.9 s and 117 MB; 256, 1.4 s and 201 MB; 512, 15 s and
#: 480 MB; 1024, over a minute; with an ``slo-latency-quantile`` target, whose response-time
#: tensor grows as N³ too, 128: 1.9 s and 545 MB; 256: over 100 s)
MAX_TRITON_BATCH_SIZE: Final = 128
#: ``maxQueueSize`` (K − N); the model caps the default queue (queueFactor·N) at the same value
MAX_QUEUE_SIZE: Final = points.MAX_QUEUE
#: ``queueFactor`` (K − N = factor·N)
MAX_QUEUE_FACTOR: Final = 1000.0
#: profile parameters α, β, γ, δ (ms, ms per token or per request)
MAX_PROFILE_PARAMETER: Final = 1e7
#: times in ms: SLO targets (``slo-itl``, ``slo-ttft``, ``slo-ttw``, ``slo-latency``, the
#: analyzer's ``targetTTFT``/``targetITL``) and ``queueDelayMs`` (1e9 ms is 11.6 days)
MAX_TIME_MS: Final = 1e9
#: the smallest positive SLO target in ms (0 stays "no target"): a nanosecond
MIN_TIME_MS: Final = 1e-6
#: ``slo-tps``, tokens per second
MAX_TPS: Final = 1e9
#: replicas and counts: ``numReplicas``, ``minNumReplicas``, ``maxNumReplicas``, capacity
#: ``count``, ``multiplicity``, ``accCount``, ``priority``
MAX_COUNT: Final = 1_000_000
#: costs (an accelerator's ``cost``, ``currentAlloc.cost``)
MAX_COST: Final = 1e12
#: other magnitudes with no natural scale: ``memSize``, ``memBW``, ``arrivalCOV``, ``serviceCOV``
MAX_QUANTITY: Final = 1e12
#: ``milpTimeLimit``, seconds (a day)
MAX_MILP_TIME_LIMIT: Final = 86_400.0
#: arrays and objects nested deeper than this in a JSON or YAML file are refused (Inferno's files
#: are 5 levels deep); it also keeps every recursive walk of a document far from Python's limit
MAX_NESTING: Final = 64
#: digits of an integer literal: Python's own limit on converting text to int (4300 by default)
MAX_INT_DIGITS: Final = sys.get_int_max_str_digits() or 4300
