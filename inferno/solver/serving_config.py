"""How each opted-in batch-kind replica serves: Triton's model instances c (``instance_group
count``) and batching delay D (``max_queue_delay_microseconds``), decided with the accelerator,
the replicas and the batch (issue 12, item 2; docs/triton.md, "Deciding the instances and the
delay").

**Who.** A batch-kind model row under Triton's batching that carries ``contention`` (κ(1), κ(2),
…: written by ``inferno profile --instances-run``; :attr:`BatchProfile.decide_serving`). Rows
without it are sized exactly as before, on their own ``queueDelayMs`` and one instance. A row
whose contention lists only κ(1) = 1 goes through the same search with one instance.

**Options** per (server, accelerator) pair: c = 1 with the row's own delay, and each c > 1 with
D = ½·κ(c)·τ(N) (:data:`DELAY_FRACTIONS`), capped at L − κ(c)·τ(1) under a latency target L,
rounded to whole µs, dropped below :data:`MIN_DELAY_MS`. c > 1 without a delay is offered only
when the optimizer data says ``offerNoDelay`` (``no_delay``): its model
(:mod:`inferno.model.bulk_multi`) costs tenths of a second per rate at N = 32–64 and has no
cheap stand-in, which turns a first decision of seconds into minutes (docs/triton.md).

**Screening, then the chain.** An option with a delay is sized here on the virtual instance
(:meth:`~inferno.model.points.OperatingPoints.virtual_instances`: its means cost tens to
hundreds of times less per rate than the exact chain's, :mod:`inferno.model.bulk_multi_delay`,
bench/instance_models.py; within a fraction of a percent of it below 60 % of the capacity,
pessimistic by a few percent above, optimistic when the delay is much shorter than a batch).
The allocation of the chosen option is then sized on the chain, as every row with c > 1 is,
its search started from rungs around the virtual instance's λ*
(:data:`~inferno.model.sizing.GUIDE_FRACTIONS`): so its replicas come from the exact model, and
can differ from the option's screened count (``explain`` shows both).

**Choice.** The option needing the fewest replicas wins (a pair's cost is its unit cost ×
replicas), ties to fewer instances, then the shorter delay. Each option's λ* comes from its
model (:mod:`inferno.model.bulk_instances`) to a relative 1e-4 (:data:`OPTION_RTOL`) and is
cached per (profile row, batch, queue, targets, c, D): λ* does not depend on the demand. Two exact
cuts skip the search of an option that cannot win: its capacity c·N/(κ·τ(N)) alone needs as many
replicas as the best so far, or it misses the targets at the rate each of (best − 1) replicas
would take (one evaluation; the mean latency is quasi-convex in the rate, so every higher rate
misses too).

**Not asked** (:func:`fallback_note`): a batch-kind row under Triton's batching without
``contention`` is sized as before, with one instance (c = 1) and its own delay, and has no
decision; ``optimize`` and ``explain`` say so when the optimizer data asks for the decision.

**Short delays on one instance** (:func:`prefetch_note`): a real Triton's scheduler closes the
next batch as soon as its oldest request has waited the delay, even while the instance still runs
the current one (it prefetches up to two batches per instance). With one instance and a delay
shorter than the batch time, later arrivals can wait one batch more than the model lets them,
so the model is optimistic under load, the more the shorter the delay (docs/triton.md, "Checked
against a real Triton"); ``optimize`` and ``explain`` say so for every allocation that runs one
instance with a delay shorter than its shortest batch, α + β.

**Latency-quantile targets** are decided too: each option's λ* is then the rate at which
P(R > target) = 1 − q on its response-time distribution (:func:`~inferno.model.sizing.size`),
and options with c > 1 and a delay are compared on the chain's distribution
(:mod:`inferno.model.bulk_multi_delay_time`), not the virtual instance's: that one is 5 to
15 times slower to build at N = 32 and can be optimistic. The quantile's search starts from
the λ* of the mean at the same target, so it does not solve near saturation; an option costs
seconds at N = 32.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..model import bulk_instances
from ..model.accurate import build_points
from ..model.points import OperatingPoints
from ..model.profile_arrays import ProfileArrays
from ..model.profiles import MAX_QUEUE_DELAY_MS, BatchProfile
from ..model.sizing import HIGH_FRACTION, SloArrays, meets, size
from ..units import MS_PER_MIN

__all__ = [
    "DELAY_FRACTIONS",
    "ServingDecision",
    "ServingOption",
    "clear_cache",
    "decide",
    "delay_grid",
    "fallback_note",
    "prefetch_note",
]

logger = logging.getLogger(__name__)

F = NDArray[np.float64]
Idx = NDArray[np.intp]

#: the delays offered with c > 1 instances, as fractions of a full batch's time κ(c)·τ(N). Longer
#: ones lost in every cell of the accuracy bench (bench/README.md, "Batching delay and model
#: instances": the mean at D = κ·τ(N) is never below that at ½·κ·τ(N), in the emulator too)
DELAY_FRACTIONS = (0.5,)
#: a delay capped below this (ms) by the latency target is not offered (it is noise to Triton)
MIN_DELAY_MS = 0.1
#: options are compared to this relative precision of λ* (the chosen one is then sized to the
#: solver's 1e-8 with the other candidates)
OPTION_RTOL = 1e-4
_CACHE_SIZE = 4096
_CACHE: OrderedDict[tuple[float | str, ...], tuple[float, str]] = OrderedDict()
#: an option is cut by one evaluation at most this many times before it is sized and cached
PRECHECKS = 2
_PRECHECKED: dict[tuple[float | str, ...], int] = {}


@dataclass(frozen=True, slots=True)
class ServingOption:
    """One (instances, delay) alternative of a pair, as sized."""

    instances: int
    delay_us: int
    max_rate: float  # λ* req/min per replica (NaN: misses a target even at the lowest load)
    bound: str  # what bounds λ* (or the target missed)
    replicas: int  # replicas the demand needs (0: infeasible or not sized)
    cost: float  # unit cost × replicas (NaN: infeasible or not sized)
    #: not sized: it needs at least this many replicas, no fewer than an option compared before
    #: it — bound "capacity": even at its capacity c·N/(κ·τ(N)); "slo": it misses the targets
    #: at the rate each of ``at_least − 1`` replicas would take (one evaluation, no search)
    at_least: int = 0

    @property
    def feasible(self) -> bool:
        return not math.isnan(self.max_rate)


@dataclass(frozen=True, slots=True)
class ServingDecision:
    """The chosen (instances, delay) of one (server, accelerator) pair and the alternatives
    compared (none when only the chosen one is known)."""

    instances: int
    delay_us: int
    options: tuple[ServingOption, ...] = ()

    def why(self) -> str:
        """One sentence: why this delay and instance count (for ``explain``)."""
        if not self.options:
            return f"{self.instances} instance(s), delay {self.delay_us} µs"
        chosen = next(
            o for o in self.options if o.instances == self.instances and o.delay_us == self.delay_us
        )
        parts = []
        for o in self.options:
            if o is chosen:
                continue
            if o.at_least and o.bound == "capacity":
                parts.append(
                    f"c={o.instances} D={o.delay_us} µs needs ≥ {o.at_least} even at its capacity"
                )
            elif o.at_least:
                parts.append(
                    f"c={o.instances} D={o.delay_us} µs needs ≥ {o.at_least} (misses the targets "
                    f"at the rate {_of_replicas(o.at_least - 1)} would take)"
                )
            elif not o.feasible:
                parts.append(f"c={o.instances} D={o.delay_us} µs misses {o.bound}")
            else:
                parts.append(
                    f"c={o.instances} D={o.delay_us} µs needs {o.replicas} "
                    f"(λ* {o.max_rate:.1f} req/min, cost {o.cost:g})"
                )
        head = (
            f"{chosen.instances} instance(s), delay {chosen.delay_us} µs: λ* "
            f"{chosen.max_rate:.1f} req/min per replica, {chosen.replicas} replica(s), "
            f"the fewest of {len(self.options)} options (ties: fewer instances, shorter delay)"
        )
        if any(o.instances > 1 and o.delay_us > 0 for o in self.options):
            head += (
                " (options with c > 1 and a delay screened on the virtual instance; the "
                "allocation's λ* and replicas come from the exact chain)"
            )
        return head + ("; " + "; ".join(parts) if parts else "")


def clear_cache() -> None:
    """Forget the sized options and the model's memoised chains (tests, benches; a changed
    profile gets a new key anyway)."""
    _CACHE.clear()
    _PRECHECKED.clear()
    bulk_instances.clear_memo()


def fallback_note(profile: object) -> str:
    """Why a row the decision could apply to is not decided (empty when it is, or cannot be): a
    batch-kind row under Triton's batching without contention data falls back to c = 1."""
    if (
        isinstance(profile, BatchProfile)
        and profile.batching == "triton"
        and not profile.decide_serving
        and len(profile.contention) == 1
    ):
        return (
            "serving not decided (no contention data: profile with --instances-run): 1 "
            f"instance, delay {round(profile.queue_delay_ms * 1000.0)} µs"
        )
    return ""


def prefetch_note(profile: object, decision: ServingDecision | None = None) -> str:
    """A warning where a real Triton is slower than the model (empty elsewhere): one model
    instance under Triton's batching with a delay that runs out within even the shortest batch
    (D < τ(1)) — the row's own instances and delay, or the ``decision``'s when the optimizer
    made one."""
    if not isinstance(profile, BatchProfile) or profile.batching != "triton":
        return ""
    instances = decision.instances if decision is not None else profile.instances
    delay_ms = decision.delay_us / 1000.0 if decision is not None else profile.queue_delay_ms
    shortest = profile.alpha + profile.beta
    if instances != 1 or not 0.0 < delay_ms < shortest:
        return ""
    return (
        f"delay {delay_ms:g} ms < a batch's {shortest:.1f} ms on one instance: a real Triton "
        "closes the next batch while one runs, so under load it queues longer than predicted, "
        "the more the shorter the delay (docs/triton.md)"
    )


def delay_grid(
    alpha: float,
    beta: float,
    n: int,
    kappa: float,
    latency: float,
    own: float,
    first: bool,
    no_delay: bool = False,
) -> list[float]:
    """The delays (ms, whole µs) offered for c instances at κ = ``kappa``: the row's ``own`` for
    c = 1 (``first``); else :data:`DELAY_FRACTIONS` of κ·τ(N) capped at ``latency`` − κ·τ(1)
    (NaN ``latency``: no cap), and none first when ``no_delay`` (the optimizer data's
    ``offerNoDelay``)."""
    if first:
        return [own]
    out = [0.0] if no_delay else []
    tau_n = kappa * (alpha + beta * n)
    cap = latency - kappa * (alpha + beta) if math.isfinite(latency) else MAX_QUEUE_DELAY_MS
    for f in DELAY_FRACTIONS:
        d = round(min(f * tau_n, cap, MAX_QUEUE_DELAY_MS) * 1000.0) / 1000.0
        if d >= MIN_DELAY_MS and d not in out:
            out.append(d)
    return out


def decide(
    profiles: Sequence[object],
    prof: ProfileArrays,
    batch: F,
    max_queue: F,
    queue_factor: float | None,
    slo: SloArrays,
    slo_rows: F,
    demand: F,
    min_r: F,
    max_r: F,
    unit_cost: F,
    model: str,
    *,
    no_delay: bool = False,
) -> tuple[ProfileArrays, dict[int, ServingDecision]]:
    """For every pair whose profile opts in (``profiles[i]`` a :class:`BatchProfile` with
    ``decide_serving``): its decision, and ``prof`` with the chosen (c, D, κ) in its row. Pairs
    that do not opt in are untouched (``prof`` itself is returned when none does). ``no_delay``:
    offer c > 1 without a delay too (the optimizer data's ``offerNoDelay``)."""
    opted = [
        i
        for i, p in enumerate(profiles)
        if isinstance(p, BatchProfile) and p.decide_serving and p.batching == "triton"
    ]
    if not opted:
        return prof, {}
    decisions: dict[int, ServingDecision] = {}
    grid: list[tuple[int, int, float, float]] = []  # (pair, c, κ, D)
    for i in opted:
        p = profiles[i]
        assert isinstance(p, BatchProfile)
        for c, kappa in enumerate(p.contention, start=1):
            for d in delay_grid(
                p.alpha,
                p.beta,
                int(batch[i]),
                kappa,
                float(slo.latency[i]),
                p.queue_delay_ms,
                c == 1,
                no_delay,
            ):
                grid.append((i, c, float(kappa), d))
    by_pair: dict[int, list[ServingOption]] = {}
    best: dict[int, tuple[int, int, float]] = {}  # pair -> (replicas, c, D) of its best so far
    # per pair: the row's own configuration first (c = 1: the fast plain model when D = 0), then
    # the most capacity first, so that the best is found early and the rest is cut short
    order = sorted(
        range(len(grid)),
        key=lambda g: (grid[g][0], g != _first_of_pair(grid, g), -grid[g][1], grid[g][3]),
    )
    for g in order:
        entry = grid[g]
        i, c, kappa, d = entry
        options = by_pair.setdefault(i, [])
        n = float(batch[i])
        # an option beats the best so far only if it needs fewer replicas (or as many and comes
        # first in the tie order: fewer instances, shorter delay) — even at its capacity
        # c·N/(κ·τ(N)) it may not
        top = HIGH_FRACTION * c * n / (kappa * (float(prof.alpha[i]) + float(prof.beta[i]) * n))
        floor = _replicas(float(demand[i]), top, float(min_r[i]))
        if i in best and (floor, c, d) >= best[i]:
            options.append(
                ServingOption(c, round(d * 1000.0), math.nan, "capacity", 0, math.nan, floor)
            )
            continue
        key = _key(entry, prof, batch, max_queue, queue_factor, slo, slo_rows, model)
        if (
            i in best
            and best[i][0] - 1 > 0
            and key not in _CACHE
            and _PRECHECKED.get(key, 0) < PRECHECKS
        ):
            # to need fewer replicas than the best it must meet the targets at the rate each of
            # best − 1 replicas would take: one evaluation there instead of a search (an option
            # cut this way PRECHECKS times is sized and cached instead: servers of one class share
            # its λ*, but the check depends on each one's demand)
            _PRECHECKED[key] = _PRECHECKED.get(key, 0) + 1
            need_rate = np.array([demand[i] / (best[i][0] - 1)])
            one = _points([entry], prof, batch, max_queue, queue_factor, model, slo)
            if not bool(meets(one, slo.take(np.array([i])), need_rate)[0]):
                options.append(
                    ServingOption(c, round(d * 1000.0), math.nan, "slo", 0, math.nan, best[i][0])
                )
                continue
        (lam,), (bound,) = _sized(
            [entry], prof, batch, max_queue, queue_factor, slo, slo_rows, model
        )
        need = _replicas(float(demand[i]), lam, float(min_r[i])) if math.isfinite(lam) else 0
        feasible = math.isfinite(lam) and need <= max_r[i]
        options.append(
            ServingOption(
                instances=c,
                delay_us=round(d * 1000.0),
                max_rate=lam * MS_PER_MIN if feasible else math.nan,
                bound=bound if math.isfinite(lam) else bound or "latency",
                replicas=need if feasible else 0,
                cost=float(unit_cost[i]) * need if feasible else math.nan,
            )
        )
        if feasible and (i not in best or (need, c, d) < best[i]):
            best[i] = (need, c, d)
    for options in by_pair.values():
        options.sort(key=lambda o: (o.instances, o.delay_us))
    delays, counts, kappas = prof.delay.copy(), prof.instances.copy(), prof.kappa.copy()
    for i, options in by_pair.items():
        p = profiles[i]
        assert isinstance(p, BatchProfile)
        ok = [o for o in options if o.feasible]  # pruned options are not feasible
        win = min(ok, key=lambda o: (o.replicas, o.instances, o.delay_us)) if ok else options[0]
        decisions[i] = ServingDecision(win.instances, win.delay_us, tuple(options))
        delays[i] = win.delay_us / 1000.0
        counts[i] = float(win.instances)
        kappas[i] = float(p.contention[win.instances - 1])
    fields = {f: getattr(prof, f) for f in ProfileArrays.__dataclass_fields__}
    fields.update(delay=delays, instances=counts, kappa=kappas)
    return ProfileArrays(**fields), decisions


def _first_of_pair(grid: list[tuple[int, int, float, float]], g: int) -> int:
    """The index of the first grid entry of entry ``g``'s pair (the row's own configuration)."""
    while g > 0 and grid[g - 1][0] == grid[g][0]:
        g -= 1
    return g


def _replicas(demand: float, rate: float, least: float) -> int:
    """Replicas a demand (/ms) needs at λ* = ``rate`` /ms, at least ``least``."""
    need = max(math.ceil(demand / rate * (1.0 - 1e-12)), 1) if demand > 0 else 0
    return int(max(need, least))


def _points(
    entries: list[tuple[int, int, float, float]],
    prof: ProfileArrays,
    batch: F,
    max_queue: F,
    queue_factor: float | None,
    model: str,
    slo: SloArrays,
) -> OperatingPoints:
    """The operating points of grid entries (pair, c, κ, D), c > 1 with a delay on the virtual
    instance (:meth:`~inferno.model.points.OperatingPoints.virtual_instances`) unless the pair
    has a latency-quantile target: at N = 32 the chain's distribution (bulk_multi_delay_time)
    is 5 to 15 times faster to build than the virtual instance's (bulk_delay_time;
    bench/instance_models.py), and it is not optimistic."""
    rows = np.array([e[0] for e in entries], dtype=np.intp)
    sub = prof.take(rows)
    sub = ProfileArrays(
        **{
            **{f: getattr(sub, f) for f in ProfileArrays.__dataclass_fields__},
            "instances": np.array([e[1] for e in entries], dtype=np.float64),
            "kappa": np.array([e[2] for e in entries], dtype=np.float64),
            "delay": np.array([e[3] for e in entries], dtype=np.float64),
        }
    )
    zeros = np.zeros(rows.size)  # batch-kind rows ignore tokens
    points = build_points(
        model,
        sub,
        zeros,
        zeros,
        batch=batch[rows],
        max_queue=max_queue[rows],
        queue_factor=queue_factor,
    )
    # options with a delay are screened on the virtual instance (cheap means); the allocation
    # of the chosen one is sized on the chain
    quantile = np.isfinite(slo.latency_quantile[rows]) & np.isfinite(slo.latency[rows])
    return points.virtual_instances(~quantile)


def _key(
    entry: tuple[int, int, float, float],
    prof: ProfileArrays,
    batch: F,
    max_queue: F,
    queue_factor: float | None,
    slo: SloArrays,
    slo_rows: F,
    model: str,
) -> tuple[float | str, ...]:
    """What an option's λ* depends on: the profile row, N, the queue, the targets, c, κ, D."""
    i, c, kappa, d = entry
    return (
        model,
        float(prof.alpha[i]),
        float(prof.beta[i]),
        float(batch[i]),
        -1.0 if math.isnan(max_queue[i]) else float(max_queue[i]),
        -1.0 if queue_factor is None else float(queue_factor),
        float(c),
        kappa,
        d,
        float(slo.exact_wait_quantile),
        *(-1.0 if math.isnan(x) else float(x) for x in slo_rows[i]),
    )


def _sized(
    grid: list[tuple[int, int, float, float]],
    prof: ProfileArrays,
    batch: F,
    max_queue: F,
    queue_factor: float | None,
    slo: SloArrays,
    slo_rows: F,
    model: str,
) -> tuple[list[float], list[str]]:
    """λ* (/ms, NaN: infeasible) and bound of every grid option, from the cache or sized now
    (all missing ones in one vectorised :func:`~inferno.model.sizing.size`)."""
    keys = [_key(e, prof, batch, max_queue, queue_factor, slo, slo_rows, model) for e in grid]
    missing = list(dict.fromkeys(k for k in keys if k not in _CACHE))
    if missing:
        at = {k: j for j, k in enumerate(keys)}
        entries = [grid[at[k]] for k in missing]
        rows = np.array([e[0] for e in entries], dtype=np.intp)
        points = _points(entries, prof, batch, max_queue, queue_factor, model, slo)
        sized = size(points, slo.take(rows), rtol=OPTION_RTOL)
        for j, k in enumerate(missing):
            _CACHE[k] = (float(sized.rate[j]), str(sized.bound[j]))
            _PRECHECKED.pop(k, None)
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
        if len(_PRECHECKED) > _CACHE_SIZE:
            _PRECHECKED.clear()
        logger.debug("sized %d serving options (%d cached)", len(missing), len(keys))
    out = [_CACHE[k] for k in keys]
    return [r for r, _ in out], [b for _, b in out]


def _of_replicas(n: int) -> str:
    """How the rate splits over ``n`` replicas, in words: each of 3 replicas, or 1 replica."""
    return "1 replica" if n == 1 else f"each of {n} replicas"
