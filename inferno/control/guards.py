"""The guards of the control policy, as trusted autoscalers have them (the Kubernetes HPA's
``behavior``): :func:`guard` bounds the optimizer's decisions, in this order:

0. **GPU-type hysteresis and a rollout budget** — a server moves to another accelerator only when
   that saves at least ``switch_min_saving`` of its cost and the optimizer has preferred it for
   ``switch_delay`` seconds (until then it gets the decision's ``stay``: the cheapest on its
   running accelerator); at most ``max_rollouts`` servers change accelerator, batch size, model
   instances or batching delay (each replaces every pod) per cycle, the others keep their
   configuration for now;
1. **scale-down stabilisation** — a server keeps the most replicas decided for it in the last
   ``stabilization_window`` seconds on the same accelerator and batch; scaling up is immediate;
2. **step limits** — a server on the same accelerator gains at most ``max(max_scale_up_pods,
   replicas × max_scale_up_percent / 100)`` replicas per cycle, and loses at most the like;
3. **a ceiling** — all servers together hold at most ``max_total_gpus`` GPUs: increases are cut,
   in server-name order, to what is left.

Every bound that changes a decision is a :class:`Clamp` (reported by the cycle, counted in
``/metrics``, and written into the decision's note, which the actuator's Event carries). Pure.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..cluster.inventory import ManagedDeployment
from ..cluster.plan import Decision, PlanSettings, serving_changes, steady_batch, steady_serving
from ..settings import PolicyOptions

__all__ = ["CLAMP_RULES", "Clamp", "Entry", "Guarded", "Switches", "guard"]

#: every bound a :class:`Clamp` names, in the order they are applied
CLAMP_RULES = (
    "gpu-switch-saving",
    "gpu-switch-delay",
    "max-rollouts",
    "scale-down-window",
    "max-scale-up",
    "max-scale-down",
    "max-total-gpus",
)

#: (time in s, accelerator, batch, replicas decided)
Entry = tuple[float, str, int, int]


@dataclass(frozen=True, slots=True)
class Clamp:
    """A bound that changed a decision: ``rule`` is one of :data:`CLAMP_RULES`."""

    server: str
    rule: str
    wanted: int
    got: int
    note: str = ""  # what was deferred, for the rules that keep a configuration

    def __post_init__(self) -> None:
        if self.rule not in CLAMP_RULES:  # the metric's help and the docs list them
            raise ValueError(f"unknown clamp rule {self.rule!r}; add it to CLAMP_RULES")

    @property
    def message(self) -> str:
        return f"{self.rule}: {self.note or f'{self.wanted} → {self.got} replicas'}"

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "server": self.server,
            "rule": self.rule,
            "wanted": self.wanted,
            "got": self.got,
        }
        if self.note:
            body["note"] = self.note
        return body


#: per server, the accelerator the optimizer prefers to the running one, and since when (s)
Switches = Mapping[str, tuple[str, float]]


@dataclass(frozen=True)
class Guarded:
    decisions: list[Decision]
    history: Mapping[str, tuple[Entry, ...]]
    clamps: list[Clamp] = field(default_factory=list)
    switches: Switches = field(default_factory=dict)


def _step(now: int, limit_pods: int, limit_percent: float) -> int | None:
    """The largest change allowed from ``now`` replicas (None: no limit)."""
    if limit_pods <= 0 and limit_percent <= 0:
        return None
    return max(limit_pods, math.ceil(now * limit_percent / 100.0))


def guard(
    decisions: Iterable[Decision],
    current: Mapping[str, ManagedDeployment],
    history: Mapping[str, tuple[Entry, ...]],
    now_s: float,
    opts: PolicyOptions,
    batch_tolerance: float = 0.0,
    switches: Switches | None = None,
    per_server: Mapping[str, PolicyOptions] | None = None,
    serving: PlanSettings | None = None,
) -> Guarded:
    """Bound ``decisions`` (see the module's docstring); ``current`` is each server's Deployment
    as collected, ``history`` what :class:`Guarded` returned last time. The running batch is
    kept first (:func:`~inferno.cluster.plan.steady_batch`, ``batch_tolerance``), so the window
    compares the batches that will run; with ``serving`` (the actuator's settings) the running
    instances and delay too (:func:`~inferno.cluster.plan.steady_serving`), and a change of
    either counts against the rollout budget."""
    kept: dict[str, tuple[Entry, ...]] = {}
    clamps: list[Clamp] = []
    out: list[Decision] = []
    pending: dict[str, tuple[str, float]] = {}
    rollouts = 0
    cluster_wide = opts
    for d in sorted(decisions, key=lambda x: x.server):
        # the per-server rules take the server's class's overrides; the budget and the
        # ceiling are the cluster's
        opts = (per_server or {}).get(d.server, cluster_wide)
        dep = current.get(d.server)
        if dep is not None:
            d = _switch(d, dep, (switches or {}).get(d.server), now_s, opts, pending, clamps)
            d = steady_batch(dep.accelerator, dep.max_batch, d, batch_tolerance)
            if serving is not None:
                d = steady_serving(dep, d, serving)
            if d.allocated and _rolls(d, dep, serving):
                if 0 < cluster_wide.max_rollouts <= rollouts:
                    d = _defer_rollout(d, dep, clamps, serving)
                else:
                    rollouts += 1
        if not d.allocated:
            out.append(d)
            if d.server in history:
                kept[d.server] = history[d.server]
            continue
        wanted = d.replicas
        past = [e for e in history.get(d.server, ()) if e[0] > now_s - opts.stabilization_window]
        kept[d.server] = (*past, (now_s, d.accelerator, d.max_batch, wanted))
        got = wanted
        if opts.stabilization_window > 0:
            same = [r for _, acc, b, r in past if (acc, b) == (d.accelerator, d.max_batch)]
            got = max([got, *same])
            if got != wanted:
                clamps.append(Clamp(d.server, "scale-down-window", wanted, got))
        if dep is not None and dep.accelerator == d.accelerator:
            up = _step(dep.replicas, opts.max_scale_up_pods, opts.max_scale_up_percent)
            down = _step(dep.replicas, opts.max_scale_down_pods, opts.max_scale_down_percent)
            if up is not None and got > dep.replicas + up:
                clamps.append(Clamp(d.server, "max-scale-up", got, dep.replicas + up))
                got = dep.replicas + up
            if down is not None and got < dep.replicas - down:
                clamps.append(Clamp(d.server, "max-scale-down", got, dep.replicas - down))
                got = dep.replicas - down
        out.append(d if got == d.replicas else replace(d, replicas=got))
    if cluster_wide.max_total_gpus > 0:
        out = _ceiling(out, current, cluster_wide.max_total_gpus, clamps)
    by_server: dict[str, list[str]] = {}
    for c in clamps:
        by_server.setdefault(c.server, []).append(c.message)
    noted = [
        replace(d, reason="; ".join(filter(None, [d.reason, *by_server[d.server]])))
        if d.server in by_server and d.allocated
        else d
        for d in out
    ]
    return Guarded(noted, kept, clamps, pending)


def _rolls(d: Decision, dep: ManagedDeployment, serving: PlanSettings | None = None) -> bool:
    """Whether applying ``d`` replaces every pod: a new accelerator or batch size, or (with
    ``serving``, the actuator's variable names) new model instances or batching delay."""
    if dep.replicas <= 0:
        return False
    if (d.accelerator, d.max_batch) != (dep.accelerator, dep.max_batch):
        return True
    return serving is not None and serving_changes(dep, d, serving)


def _switch(
    d: Decision,
    dep: ManagedDeployment,
    since: tuple[str, float] | None,
    now_s: float,
    opts: PolicyOptions,
    pending: dict[str, tuple[str, float]],
    clamps: list[Clamp],
) -> Decision:
    """The decision, or its ``stay`` (the same server kept on its running accelerator) while a
    switch saves less than ``switch_min_saving`` or has not been preferred for
    ``switch_delay`` seconds: a switch is a full rollout, not worth it for a passing gain."""
    stay = d.stay
    if (
        not d.allocated
        or stay is None
        or not stay.allocated
        or not dep.accelerator
        or dep.replicas <= 0
        or d.accelerator == dep.accelerator
    ):
        return d
    stay = replace(stay, stay=None)
    saving = 0.0
    if d.cost is not None and stay.cost is not None and stay.cost > 0:
        saving = 1.0 - d.cost / stay.cost
    if saving < opts.switch_min_saving:
        note = (
            f"{dep.accelerator} kept, {d.accelerator} would save {saving:.0%} "
            f"(< {opts.switch_min_saving:.0%})"
        )
        clamps.append(Clamp(d.server, "gpu-switch-saving", d.replicas, stay.replicas, note))
        return stay
    first = since[1] if since is not None and since[0] == d.accelerator else now_s
    if now_s - first < opts.switch_delay:
        pending[d.server] = (d.accelerator, first)
        note = (
            f"{dep.accelerator} kept, {d.accelerator} (saves {saving:.0%}) preferred for "
            f"{now_s - first:.0f} s of {opts.switch_delay:.0f} s"
        )
        clamps.append(Clamp(d.server, "gpu-switch-delay", d.replicas, stay.replicas, note))
        return stay
    return replace(d, stay=None)


def _defer_rollout(
    d: Decision, dep: ManagedDeployment, clamps: list[Clamp], serving: PlanSettings | None = None
) -> Decision:
    """``d`` without its change of configuration (the rollout budget of the cycle is spent):
    the running accelerator and batch, with the decision's replicas if it keeps the accelerator
    (else its ``stay``'s); the running instances and delay are left as they are."""
    if d.accelerator == dep.accelerator:
        kept = replace(d, max_batch=dep.max_batch, stay=None, instances=0, max_queue_delay_us=-1)
    elif d.stay is not None and d.stay.allocated:
        kept = replace(d.stay, stay=None, instances=0, max_queue_delay_us=-1)
    else:
        return d
    note = (
        f"{dep.accelerator} batch {dep.max_batch} kept this cycle "
        f"(wanted {d.accelerator} batch {d.max_batch})"
    )
    clamps.append(Clamp(d.server, "max-rollouts", d.replicas, kept.replicas, note))
    return kept


def _ceiling(
    decisions: list[Decision],
    current: Mapping[str, ManagedDeployment],
    ceiling: int,
    clamps: list[Clamp],
) -> list[Decision]:
    """Cut the increases (in server-name order) so that the GPUs held stay within ``ceiling``;
    decisions that do not add GPUs are never cut."""

    def held(d: Decision) -> int:
        return d.replicas * max(d.gpus_per_replica, 1) if d.allocated else 0

    def before(d: Decision) -> int:
        dep = current.get(d.server)
        if dep is None or not d.allocated or dep.accelerator != d.accelerator:
            return 0
        return dep.replicas * max(d.gpus_per_replica, 1)

    total = sum(held(d) for d in decisions)
    if total <= ceiling:
        return decisions
    out = list(decisions)
    for i in sorted(range(len(out)), key=lambda j: out[j].server):
        if total <= ceiling:
            break
        d = out[i]
        extra = held(d) - before(d)
        if extra <= 0:
            continue
        per = max(d.gpus_per_replica, 1)
        cut = min(extra, total - ceiling)
        replicas = d.replicas - math.ceil(cut / per)
        replicas = max(replicas, before(d) // per)
        total -= (d.replicas - replicas) * per
        clamps.append(Clamp(d.server, "max-total-gpus", d.replicas, replicas))
        out[i] = replace(d, replicas=replicas)
    return out
