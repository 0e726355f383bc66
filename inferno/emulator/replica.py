"""How one replica serves requests: iteration-level continuous batching (LLM kinds G0–G3), on
the emulator's event queue, and :func:`make_replica` for every kind. The batch kind (Triton
dynamic batching) is :class:`~inferno.emulator.batch_replica.BatchReplica`; what replicas share
(event queue, host, state, config) is :mod:`inferno.emulator.replica_base`. Both are re-exported
here.

LLM kinds (:class:`LLMReplica`). At each iteration boundary finished requests leave and waiting
requests join, FCFS, up to N running. Per-iteration times follow the model's formulas
(``inferno/model/_kinds.py``) written on the actual batch's per-request token counts; for a batch
of identical requests they reduce to the model's formulas exactly:

- G0: every iteration takes α + β·b; no prefill; a request needs ``out`` iterations, its first
  token at the end of its first one.
- G1: decode iteration α + β·b. An iteration in which requests with input join is a prefill
  iteration of γ + δ·Σ_{joiners} in_j (the model's prefill(b) = γ + δ·in·b, fitted on b requests
  prefilled together, applied to the requests actually prefilled); it produces the joiners'
  first token, so a request needs ``out`` iterations in all. The running requests get a token in
  it too, but it lasts as long as the prefill: each join stalls the batch, which the model's
  τ(b) does not charge.
- G2: T(batch) = α + Σ_i (β·t_c,i + γ·t_m,i), t_c = (in+out)/(out+1), t_m = in + out/2. Decode
  iteration T + β + γ·mean_i t_m,i (the model's T(b) + β + γ(in + out/2)); an iteration in which
  requests with input join is a prefill iteration of T + (β+γ)·Σ_{joiners} in_j, producing no
  token for them, then ``out`` decode iterations, the first token after the first decode.
- G3 (chunked prefill): every iteration takes α + Σ_i δ_i with δ_i = (w_pre + w_dec)/(nc + out)
  per request, nc the prefill chunks the model's table gives for the batch size at join
  (:func:`g3_chunks`); a request needs nc + ``out`` iterations, first token after nc + 1.
- Requests with no input tokens skip the prefill iteration (G1, G2); running requests produce a
  token in every iteration, prefill iterations included. At N = 1 a request's service time is
  exactly the model's τ(1) (G1: prefill + (out − 1)·decode; G2/G3: prefill + out·decode).

With ``exponential`` service each iteration takes an exponential time of the formula's mean.

Speed: iterations are not events. Between events a replica runs a *segment* of iterations of one
constant duration d(batch), up to the next iteration at which a running request completes (or,
in G1/G2, the single prefill iteration after a join). Remaining tokens are not counted down:
each request stores the replica's iteration number at which it completes (a heap), so a segment
advances every request at once. An arrival with room in the batch cuts the segment at the next
iteration boundary after it (deterministic: by arithmetic; exponential: from the order
statistics of the segment's boundaries given its end, then fresh draws), where the request
joins. First-token times inside a deterministic segment are computed when it ends; in exponential
mode a request's first-token iteration is a segment end.
"""

from __future__ import annotations

import logging
import math
from functools import lru_cache
from heapq import heappop, heappush

from ..model.profiles import (
    BatchProfile,
    G0Profile,
    G1Profile,
    G2Profile,
    G3Profile,
)
from .batch_replica import BatchReplica
from .replica_base import (
    EventQueue,
    Host,
    Replica,
    ReplicaConfig,
    ReplicaState,
    Service,
)

__all__ = [
    "BatchReplica",
    "EventQueue",
    "Host",
    "LLMReplica",
    "Replica",
    "ReplicaConfig",
    "ReplicaState",
    "Service",
    "g0_iteration_ms",
    "g1_decode_ms",
    "g1_prefill_ms",
    "g2_decode_ms",
    "g2_prefill_ms",
    "g2_request_terms",
    "g3_chunks",
    "g3_iteration_ms",
    "g3_request_delta",
    "make_replica",
]

logger = logging.getLogger(__name__)

# --- per-iteration formulas on actual batches ------------------------------------------------


def g0_iteration_ms(p: G0Profile, b: int) -> float:
    """G0: every iteration (one token for each of the b running requests) takes α + β·b."""
    return p.alpha + p.beta * b


def g1_decode_ms(p: G1Profile, b: int) -> float:
    """G1 decode iteration at batch b: α + β·b."""
    return p.alpha + p.beta * b


def g1_prefill_ms(p: G1Profile, prefill_in: float) -> float:
    """G1 prefill iteration: γ + δ·Σ in over the requests prefilled (the joiners with input),
    the model's γ + δ·in·b when b equal requests are prefilled together."""
    return p.gamma + p.delta * prefill_in


def g2_request_terms(p: G2Profile | G3Profile, n_in: int, n_out: int) -> tuple[float, float]:
    """One request's share of the G2 iteration cost, (β·t_c + γ·t_m, t_m), with
    t_c = (in+out)/(out+1) and t_m = in + out/2."""
    t_c = (n_in + n_out) / (n_out + 1.0)
    t_m = n_in + n_out / 2.0
    return p.beta * t_c + p.gamma * t_m, t_m


def g2_decode_ms(p: G2Profile, b: int, sum_w: float, sum_m: float) -> float:
    """G2 decode iteration: T + β + γ·mean t_m, T = α + Σ_i (β·t_c,i + γ·t_m,i) = α + sum_w."""
    return p.alpha + sum_w + p.beta + p.gamma * sum_m / b


def g2_prefill_ms(p: G2Profile, sum_w: float, prefill_in: float) -> float:
    """G2 prefill iteration: T + (β+γ)·Σ in over the joiners that have input."""
    return p.alpha + sum_w + (p.beta + p.gamma) * prefill_in


@lru_cache(maxsize=1 << 16)
def g3_chunks(n_in: int, n_out: int, max_num_tokens: int, b: int) -> int:
    """The model's prefill chunk count nc(B): the fewest j ≥ 1 with
    B_j = ⌊(j+m)(M − L/j)/(L+m)⌋ ≥ B (L input, m output tokens, M the token budget)."""
    big_l, m, big_m = float(n_in), float(n_out), float(max_num_tokens)

    def fits(j: int) -> bool:
        return math.floor((j + m) * (big_m - big_l / j) / (big_l + m)) >= b

    # (j+m)(M − L/j) ≥ B(L+m)  ⇔  M j² + (M m − L − B(L+m)) j − m L ≥ 0
    q = big_m * m - big_l - b * (big_l + m)
    root = (-q + math.sqrt(q * q + 4.0 * big_m * m * big_l)) / (2.0 * big_m)
    j = max(1, math.ceil(root))
    while j > 1 and fits(j - 1):
        j -= 1
    while not fits(j) and j < 1_000_000:
        j += 1
    return j


def g3_request_delta(p: G3Profile, n_in: int, n_out: int, nc: int) -> float:
    """One request's share δ of a G3 iteration: (w_pre + w_dec)/(nc + out), with
    w_pre = (β + γ(nc+1)/2)·L and w_dec = β·m + γ·m·(L + (m+1)/2)."""
    big_l, m = float(n_in), float(n_out)
    w_pre = (p.beta + p.gamma * (nc + 1.0) / 2.0) * big_l
    w_dec = p.beta * m + p.gamma * m * (big_l + (m + 1.0) / 2.0)
    return (w_pre + w_dec) / (nc + m)


def g3_iteration_ms(p: G3Profile, sum_delta: float) -> float:
    """G3 iteration: α + Σ_i δ_i (the model's α + b·δ)."""
    return p.alpha + sum_delta


# --- replicas ---------------------------------------------------------------------------------


class LLMReplica(Replica):
    """Continuous batching (see the module docstring). Subclasses give the per-kind formulas."""

    __slots__ = ("b", "d", "fin", "ftq", "it", "join_pending", "stop_it", "t_seg", "t_stop")

    #: whether an iteration in which requests with input join is a distinct prefill iteration
    prefill_iteration = False

    def __init__(self, rid: int, config: ReplicaConfig, host: Host, created_at: float) -> None:
        super().__init__(rid, config, host, created_at)
        self.b = 0  # running requests
        self.it = 0  # iterations completed at the segment's start
        self.t_seg = 0.0  # the segment's start
        self.d = 0.0  # the segment's iteration time
        self.stop_it = 0  # the iteration number at which the segment ends
        self.t_stop = 0.0  # ... and its time
        self.join_pending = False  # the segment ends at the next boundary for a join
        self.fin: list[tuple[int, int, float, float]] = []  # (last iteration, rid, c1, c2)
        self.ftq: list[tuple[int, int]] = []  # (first-token iteration, rid), not yet reached

    @property
    def in_service(self) -> int:
        return self.b

    # per-kind hooks ---------------------------------------------------------------------------

    def _admit(self, n_in: int, n_out: int, it: int, b: int) -> tuple[int, int, float, float, int]:
        """A request joins at iteration ``it`` into a batch of ``b``: (first-token iteration,
        last iteration, c1, c2, prefill input tokens). c1/c2 are its terms in the batch sums."""
        raise NotImplementedError

    def _release(self, c1: float, c2: float) -> None:
        """Remove a finished request's terms from the batch sums."""

    def _decode_ms(self) -> float:
        raise NotImplementedError

    def _prefill_ms(self, prefill_in: int) -> float:
        raise NotImplementedError

    def _reset_sums(self) -> None:
        """The batch emptied: zero the sums (no floating-point drift)."""

    # the mechanics ------------------------------------------------------------------------------

    def arrive(self, rid: int, t: float) -> None:
        self.held += 1
        self.waiting.append(rid)
        if self.b == 0:
            self._boundary(t, self.it)
        elif not self.join_pending and self.b < self.n:
            self._cut(t)

    def _cut(self, t: float) -> None:
        """End the running segment at the first iteration boundary after ``t``."""
        self.join_pending = True
        left = self.stop_it - self.it
        if left <= 1 or self.d <= 0.0:
            return
        if self.expo:
            span = self.t_stop - self.t_seg
            frac = min(max((t - self.t_seg) / span, 0.0), 1.0) if span > 0.0 else 1.0
            rng = self.host.rng
            passed = int(rng.binomial(left - 1, frac))  # boundaries before t, given the end
            if passed >= left - 1:
                return
            rest = left - 1 - passed  # the remaining boundaries are uniform on (t, t_stop)
            tb = t + (self.t_stop - t) * (1.0 - float(rng.random()) ** (1.0 / rest))
            nxt = passed + 1
        else:
            nxt = int((t - self.t_seg) / self.d) + 1
            if nxt >= left:
                return
            tb = max(self.t_seg + nxt * self.d, t)
        self.stop_it = self.it + nxt
        self.t_stop = tb
        self.version += 1
        self.host.events.push(tb, self._on_stop, self.version)

    def _on_stop(self, t: float, version: int) -> None:
        if version == self.version:
            self._boundary(t, self.stop_it)

    def _boundary(self, t: float, it_now: int) -> None:
        """Iteration boundary number ``it_now`` at time ``t``: tokens, completions, joins, and
        the next segment."""
        host = self.host
        rec = host.rec
        ftq = self.ftq
        if ftq and ftq[0][0] <= it_now:
            first = rec.first_token
            t0, it0, d = self.t_seg, self.it, self.d
            while ftq and ftq[0][0] <= it_now:
                fti, rid = heappop(ftq)
                first[rid] = t if fti == it_now else t0 + (fti - it0) * d
        fin = self.fin
        if fin and fin[0][0] <= it_now:
            completion = rec.completion
            arrival = rec.arrival
            oldest = t
            done = 0
            while fin and fin[0][0] <= it_now:
                _, rid, c1, c2 = heappop(fin)
                completion[rid] = t
                a = arrival.item(rid)
                if a < oldest:
                    oldest = a
                self._release(c1, c2)
                done += 1
            self.b -= done
            self.held -= done
            host.completed += done
            if t - oldest > rec.max_sojourn:
                rec.max_sojourn = t - oldest
            if self.b == 0:
                self._reset_sums()
        self.it = it_now
        self.t_seg = t
        self.join_pending = False
        waiting = self.waiting
        prefill_in = 0
        room = self.n - self.b
        if room > 0 and waiting:
            k = min(room, len(waiting))
            b_after = self.b + k
            start = rec.start
            col_in = rec.input_tokens
            col_out = rec.output_tokens
            for _ in range(k):
                rid = waiting.popleft()
                start[rid] = t
                ft, last, c1, c2, pre = self._admit(
                    col_in.item(rid), col_out.item(rid), it_now, b_after
                )
                heappush(ftq, (ft, rid))
                heappush(fin, (last, rid, c1, c2))
                prefill_in += pre
            self.b = b_after
            if not self.busy:
                self.busy = True
                self.busy_since = t
        if self.b == 0:
            self._idle(t)
            return
        if prefill_in > 0 and self.prefill_iteration:
            d = self._prefill_ms(prefill_in)
            stop = it_now + 1
        else:
            d = self._decode_ms()
            stop = fin[0][0]
            if self.expo and ftq and ftq[0][0] < stop:
                stop = ftq[0][0]
        d *= host.slowdown  # co-runners on a shared MPS GPU (1 alone)
        n_it = stop - it_now
        dur = float(host.rng.standard_gamma(n_it)) * d if self.expo else n_it * d
        self.d = d
        self.stop_it = stop
        self.t_stop = t + dur
        self.version += 1
        host.events.push(t + dur, self._on_stop, self.version)


class G0Replica(LLMReplica):
    __slots__ = ("alpha", "beta")

    def __init__(self, rid: int, config: ReplicaConfig, host: Host, created_at: float) -> None:
        super().__init__(rid, config, host, created_at)
        p = config.profile
        assert isinstance(p, G0Profile)
        self.alpha = p.alpha
        self.beta = p.beta

    def _admit(self, n_in: int, n_out: int, it: int, b: int) -> tuple[int, int, float, float, int]:
        return it + 1, it + n_out, 0.0, 0.0, 0

    def _decode_ms(self) -> float:
        return self.alpha + self.beta * self.b


class G1Replica(LLMReplica):
    __slots__ = ("profile",)
    prefill_iteration = True

    def __init__(self, rid: int, config: ReplicaConfig, host: Host, created_at: float) -> None:
        super().__init__(rid, config, host, created_at)
        p = config.profile
        assert isinstance(p, G1Profile)
        self.profile = p

    def _admit(self, n_in: int, n_out: int, it: int, b: int) -> tuple[int, int, float, float, int]:
        return it + 1, it + n_out, 0.0, 0.0, n_in

    def _decode_ms(self) -> float:
        return g1_decode_ms(self.profile, self.b)

    def _prefill_ms(self, prefill_in: int) -> float:
        return g1_prefill_ms(self.profile, prefill_in)


class G2Replica(LLMReplica):
    __slots__ = ("profile", "sum_m", "sum_w")
    prefill_iteration = True

    def __init__(self, rid: int, config: ReplicaConfig, host: Host, created_at: float) -> None:
        super().__init__(rid, config, host, created_at)
        p = config.profile
        assert isinstance(p, G2Profile)
        self.profile = p
        self.sum_w = 0.0
        self.sum_m = 0.0

    def _admit(self, n_in: int, n_out: int, it: int, b: int) -> tuple[int, int, float, float, int]:
        w, m = g2_request_terms(self.profile, n_in, n_out)
        self.sum_w += w
        self.sum_m += m
        if n_in > 0:
            return it + 2, it + 1 + n_out, w, m, n_in
        return it + 1, it + n_out, w, m, 0

    def _release(self, c1: float, c2: float) -> None:
        self.sum_w -= c1
        self.sum_m -= c2

    def _reset_sums(self) -> None:
        self.sum_w = 0.0
        self.sum_m = 0.0

    def _decode_ms(self) -> float:
        return g2_decode_ms(self.profile, self.b, self.sum_w, self.sum_m)

    def _prefill_ms(self, prefill_in: int) -> float:
        return g2_prefill_ms(self.profile, self.sum_w, prefill_in)


class G3Replica(LLMReplica):
    __slots__ = ("profile", "sum_delta")

    def __init__(self, rid: int, config: ReplicaConfig, host: Host, created_at: float) -> None:
        super().__init__(rid, config, host, created_at)
        p = config.profile
        assert isinstance(p, G3Profile)
        self.profile = p
        self.sum_delta = 0.0

    def _admit(self, n_in: int, n_out: int, it: int, b: int) -> tuple[int, int, float, float, int]:
        p = self.profile
        nc = g3_chunks(n_in, n_out, p.max_num_tokens, b)
        delta = g3_request_delta(p, n_in, n_out, nc)
        self.sum_delta += delta
        return it + nc + 1, it + nc + n_out, delta, 0.0, 0

    def _release(self, c1: float, c2: float) -> None:
        self.sum_delta -= c1

    def _reset_sums(self) -> None:
        self.sum_delta = 0.0

    def _decode_ms(self) -> float:
        return g3_iteration_ms(self.profile, self.sum_delta)


def make_replica(rid: int, config: ReplicaConfig, host: Host, created_at: float) -> Replica:
    """A replica of the kind of ``config.profile``."""
    p = config.profile
    if isinstance(p, BatchProfile):
        return BatchReplica(rid, config, host, created_at)
    if isinstance(p, G0Profile):
        return G0Replica(rid, config, host, created_at)
    if isinstance(p, G1Profile):
        return G1Replica(rid, config, host, created_at)
    if isinstance(p, G2Profile):
        return G2Replica(rid, config, host, created_at)
    if isinstance(p, G3Profile):
        return G3Replica(rid, config, host, created_at)
    raise TypeError(f"not a profile: {p!r}")
