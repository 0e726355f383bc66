"""Cost at verified SLO: the Inferno-compatible and the accurate model's allocations, each
verified request by request in the emulator.

For each system, solve with ``model: inferno`` and ``model: accurate`` (unlimited capacity), then
emulate every server as allocated: its replicas on the chosen accelerator at the chosen batch N
and queue K − N, Poisson arrivals at the server's whole rate, **random routing** (a Kubernetes
Service), deterministic iterations, the request lengths the data states (fixed at the averages
unless ``outTokensCOV`` says otherwise: CV 1 exponential, any other CV lognormal). Each server is
judged on its class's targets as the class defines them: ``slo-itl`` the mean ITL (token
weighted), ``slo-ttw`` the wait's ``slo-ttw-quantile`` (0.95), ``slo-ttft``/``slo-latency`` the
mean or their quantile. A server meets its SLO when every target's measured value is within it and
under 0.1% of its requests are rejected. ``ratio`` is measured / target of the binding target,
± the 95% CI of 10 batch means.

Systems:

- ``large``: ``samples/large`` as is (G0, 27 servers). The loads carry ``serviceCOV`` 1.5, which
  is not an output-length CV (docs/model.md, "Accurate mode"): lengths are fixed at avgLength.
- ``g2`` / ``g1``: the same 27 servers and 21 accelerator configurations, each G0 profile turned
  into a G2 (α, β₂ = 0.4β, γ₂ = 0.5β/384: a decode iteration α + β·b at 128/512 tokens, prefill
  (β₂ + γ₂)·128 per joiner) or G1 profile (decode α + β·b, prefill 1.75α + 3β per joiner) at
  the G0 row's maxBatchSize; loads 128 in / 512 out at the sample's rates, ``outTokensCOV`` 0
  (fixed); classes: the sample's slo-itl and a mean slo-ttft of 250 / 500 / 1000 ms (Premium /
  Bronze / Free).
- ``g2exp``: ``g2`` with exponential output lengths (``outTokensCOV`` 1, emulated so).
- ``g1logn`` / ``g2logn``: ``g1`` / ``g2`` with lognormal output lengths of CV 1.5
  (``outTokensCOV`` 1.5, ``outTokensDist`` lognormal, emulated so: uncapped, so 1 request in
  10⁴ asks for more than 32× the mean). Not in the default ``--systems``.
- ``g2logn8k``: ``g2logn`` served capped at 8,192 tokens a request (a server's ``max_tokens``):
  the lognormal of mean 512 and CV 1.5 cut there, the data the served lengths' mean and CV (as a
  collector measures them, from a seeded sample) and ``outTokensMax`` 8192. Not in the default.

``--fewer`` also emulates each allocation with one replica fewer: does it still meet its SLOs
(the slack the model left)?

Usage::

    python bench/accurate_cost.py [--systems large,g2,g1,g2exp] [--requests 30000] [--jobs 2]
                                  [--fewer] [--markdown]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from multiprocessing import Pool
from pathlib import Path
from types import MappingProxyType

import numpy as np
from _tables import print_table  # bench/, first on sys.path when run as a script
from numpy.typing import NDArray

from inferno.data import load_system
from inferno.emulator import Exponential, Fixed, Lengths, LogNormal, Poisson, ServerSpec, Simulation
from inferno.model.points import DEFAULT_QUEUE_FACTOR
from inferno.model.profiles import G0Profile, G1Profile, G2Profile, Profile
from inferno.solver import Solution, solve
from inferno.system import Load, PerformanceModel, Server, System, Target

F = NDArray[np.float64]

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "large"
WARMUP = 0.05
BATCHES = 10
T_CRIT = 2.262  # Student t, 9 degrees of freedom, 97.5%
MAX_REJECTED = 0.001
#: mean TTFT targets of the synthetic G1/G2 systems per class (ms)
TTFT_TARGET = {"Premium": 250.0, "Bronze": 500.0, "Free": 1000.0}
SYNTH_IN, SYNTH_OUT = 128, 512
LOGN_CV, LOGN_CAP = 1.5, 8192  # g2logn8k: the lognormal drawn, and where it is cut


# --- the systems -------------------------------------------------------------------------------


def _llm_profile(kind: str, p: G0Profile) -> Profile:
    if kind == "G2":
        t_m = SYNTH_IN + SYNTH_OUT / 2.0  # the G2 memory tokens per member at 128/512
        return G2Profile(p.alpha, 0.4 * p.beta, 0.5 * p.beta / t_m, p.max_batch_size, p.at_tokens)
    return G1Profile(
        p.alpha, p.beta, 1.75 * p.alpha, 3.0 * p.beta / SYNTH_IN, p.max_batch_size, p.at_tokens
    )


def synthetic(
    base: System, kind: str, cov: float, dist: str | None = None, cap: int | None = None
) -> System:
    """``base`` (samples/large) with its G0 profiles turned into ``kind`` (G1/G2) profiles,
    128/512-token loads of output-length CV ``cov`` (family ``dist``) and mean TTFT targets
    (module docstring); with ``cap``, the lengths served at most that many tokens, the data
    their served mean and CV and the cap."""
    out_mean = float(SYNTH_OUT)
    if cap is not None:
        x = LogNormal(float(SYNTH_OUT), cov, cap).sample(400_000, np.random.default_rng(0))
        out_mean, cov = float(x.mean()), float(x.std() / x.mean())
    profiles = []
    for mp in base.profiles:
        if isinstance(mp.profile, G0Profile):
            profiles.append(replace(mp, profile=_llm_profile(kind, mp.profile)))
    classes = {}
    for name, cls in base.classes.items():
        if name not in TTFT_TARGET:
            continue
        targets = {m: Target(m, itl=t.itl, ttft=TTFT_TARGET[name]) for m, t in cls.targets.items()}
        classes[name] = replace(cls, targets=MappingProxyType(targets))
    servers = tuple(
        replace(
            s,
            load=Load(
                s.load.arrival_rate,
                float(SYNTH_IN),
                out_mean,
                out_tokens_cov=cov,
                out_tokens_dist=dist,
                out_tokens_max=None if cap is None else float(cap),
            ),
        )
        for s in base.servers
    )
    return replace(
        base,
        profiles=tuple(profiles),
        classes=MappingProxyType(classes),
        servers=servers,
    )


def systems(names: Sequence[str]) -> dict[str, System]:
    base = load_system(SAMPLE)
    build = {
        "large": lambda: base,
        "g2": lambda: synthetic(base, "G2", 0.0),
        "g1": lambda: synthetic(base, "G1", 0.0),
        "g2exp": lambda: synthetic(base, "G2", 1.0),
        "g1logn": lambda: synthetic(base, "G1", 1.5, "lognormal"),
        "g2logn": lambda: synthetic(base, "G2", 1.5, "lognormal"),
        "g2logn8k": lambda: synthetic(base, "G2", LOGN_CV, "lognormal", LOGN_CAP),
    }
    unknown = [n for n in names if n not in build]
    if unknown:
        raise SystemExit(f"unknown system(s) {', '.join(unknown)}; choose from {', '.join(build)}")
    return {n: build[n]() for n in names}


def with_model(system: System, model: str) -> System:
    return replace(system, optimizer=replace(system.optimizer, model=PerformanceModel(model)))


# --- emulating one allocation ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Job:
    """One server's allocation to emulate."""

    key: tuple[str, str, str, int]  # system, model, server, replicas offset (0 or −1)
    profile: Profile
    load: Load
    target: Target
    replicas: int
    batch: int
    max_queue: int
    requests: int
    seed: int


def lengths(load: Load) -> Lengths:
    """The output lengths the data states: fixed at the average unless outTokensCOV says; with
    outTokensMax, g2logn8k's lognormal cut there (the data holds the served mean and CV)."""
    if load.out_tokens_max is not None:
        return LogNormal(float(SYNTH_OUT), LOGN_CV, int(load.out_tokens_max))
    mean = max(1, round(load.out_tokens))
    cov = load.out_tokens_cov
    if cov is None or cov == 0:
        return Fixed(mean)
    if cov == 1:
        return Exponential(float(mean))
    return LogNormal(float(mean), cov)


def _targets(t: Target) -> list[tuple[str, float, float | None]]:
    """(metric, target, quantile or None for the mean) of the class's targets."""
    out: list[tuple[str, float, float | None]] = []
    if t.itl:
        out.append(("itl", t.itl, None))
    if t.ttw:
        q = t.ttw_quantile
        out.append(("wait", t.ttw, q if math.isfinite(q) else None))
    if t.ttft:
        out.append(("ttft", t.ttft, t.ttft_quantile))
    if t.latency:
        out.append(("latency", t.latency, t.latency_quantile))
    return out


def _values(cols: dict[str, F], goals: list[tuple[str, float, float | None]]) -> list[float]:
    vals = []
    for metric, _, q in goals:
        if metric == "itl":
            steps = cols["tokens"] - 1.0
            multi = steps > 0
            vals.append(float(cols["itl_time"][multi].sum() / max(steps[multi].sum(), 1.0)))
        else:
            x = cols[metric]
            vals.append(float(np.quantile(x, q)) if q is not None else float(x.mean()))
    return vals


@dataclass(frozen=True, slots=True)
class Verdict:
    """One emulated allocation: each target's measured value, the binding target's ratio and
    its CI, the rejected fraction, and whether the server met its SLO."""

    key: tuple[str, str, str, int]
    values: dict[str, float]
    ratio: float
    binding: str
    ci: float
    rejected: float
    met: bool
    wall: float


def emulate(job: Job) -> Verdict:
    """Emulate the allocation; the measured value of each target, the verdict, the ratio and its
    CI (10 batch means) of the binding target."""
    t0 = time.perf_counter()
    lam = job.load.arrival_rate / 60_000.0  # /ms
    spec = ServerSpec(
        job.profile,
        Poisson(job.load.arrival_rate),
        replicas=job.replicas,
        batch_size=job.batch,
        max_queue=job.max_queue,
        input_tokens=Fixed(round(job.load.in_tokens)),
        output_tokens=lengths(job.load),
        router="random",
        startup_delay_ms=0.0,
        service="deterministic",
    )
    sim = Simulation({"s": spec}, seed=job.seed)
    t_end = job.requests / lam
    sim.run_until(t_end)
    while True:  # until every request that arrived before t_end is done or rejected
        rec = sim.records("s")
        lo = int(np.searchsorted(rec.arrival, WARMUP * t_end))
        hi = int(np.searchsorted(rec.arrival, t_end))
        if bool((np.isfinite(rec.completion[lo:hi]) | (rec.reason[lo:hi] != 0)).all()):
            break
        sim.run_until(sim.now + 0.05 * t_end)
    ok = rec.reason[lo:hi] == 0
    rejected = 1.0 - float(ok.mean()) if hi > lo else 0.0
    arr = rec.arrival[lo:hi][ok]
    cols = {
        "wait": rec.start[lo:hi][ok] - arr,
        "ttft": rec.first_token[lo:hi][ok] - arr,
        "latency": rec.completion[lo:hi][ok] - arr,
        "itl_time": rec.completion[lo:hi][ok] - rec.first_token[lo:hi][ok],
        "tokens": rec.output_tokens[lo:hi][ok].astype(np.float64),
    }
    goals = _targets(job.target)
    vals = _values(cols, goals)
    ratios = [v / g for v, (_, g, _) in zip(vals, goals, strict=True)]
    k = int(np.argmax(ratios)) if ratios else 0
    edges = np.linspace(0, arr.size, BATCHES + 1).astype(np.intp)
    per = [
        _values({n: c[a:b] for n, c in cols.items()}, goals)[k] / goals[k][1]
        for a, b in pairwise(edges.tolist())
    ]
    half = T_CRIT * float(np.std(per, ddof=1)) / math.sqrt(BATCHES) if goals else 0.0
    met = all(r <= 1.0 for r in ratios) and rejected <= MAX_REJECTED
    return Verdict(
        job.key,
        dict(zip([g[0] for g in goals], vals, strict=True)),
        ratios[k] if ratios else 0.0,
        goals[k][0] if goals else "-",
        half,
        rejected,
        met,
        time.perf_counter() - t0,
    )


def max_queue(system: System, server: Server, kind_factor: float, batch: int) -> int:
    if server.max_queue_size is not None:
        return int(server.max_queue_size)
    factor = system.optimizer.queue_factor
    return int(math.floor((kind_factor if factor is None else factor) * batch))


def jobs_of(
    name: str, system: System, model: str, requests: int, fewer: bool
) -> tuple[list[Job], Solution]:
    """The emulation jobs of one system's solution under ``model``, and the solution."""
    sol = solve(with_model(system, model))
    profiles = {(p.model, p.accelerator): p.profile for p in system.profiles}
    servers = {s.name: s for s in system.servers}
    out = []
    for i, (sname, a) in enumerate(sorted(sol.allocations.items())):
        srv = servers[sname]
        prof = profiles[(srv.model, a.accelerator)]
        target = system.classes[srv.service_class].targets[srv.model]
        queue = max_queue(system, srv, DEFAULT_QUEUE_FACTOR[prof.kind], a.max_batch)
        for offset in (0, -1) if fewer else (0,):
            reps = a.replicas + offset
            if reps < 1:
                continue
            out.append(
                Job(
                    (name, model, sname, offset),
                    prof,
                    srv.load,
                    target,
                    reps,
                    a.max_batch,
                    queue,
                    requests,
                    1000 + i,
                )
            )
    return out, sol


# --- report ------------------------------------------------------------------------------------


def report(
    name: str,
    system: System,
    sols: dict[str, Solution],
    res: dict[tuple[str, str, str, int], Verdict],
    fewer: bool,
    markdown: bool,
) -> None:
    sol_i, sol_a = sols["inferno"], sols["accurate"]
    head = ["server", "inferno: acc × R", "cost", "ratio ± CI", "met"]
    head += ["accurate: acc × R", "cost", "ratio ± CI", "met", "acc/inf"]
    if fewer:
        head += ["R−1 met (inf / acc)"]
    rows = []
    tot = {"inferno": [0.0, 0, 0, 0], "accurate": [0.0, 0, 0, 0]}  # cost, met, n, fewer met
    for srv in sorted(s.name for s in system.servers):
        line = [srv]
        costs = []
        for model, sol in (("inferno", sol_i), ("accurate", sol_a)):
            a = sol.allocations.get(srv)
            if a is None:
                line += ["unallocated", "-", "-", "-"]
                costs.append(math.nan)
                continue
            r = res[(name, model, srv, 0)]
            t = tot[model]
            t[0] += a.cost
            t[1] += r.met
            t[2] += 1
            costs.append(a.cost)
            rej = f" rej {100 * r.rejected:.1f}%" if r.rejected > MAX_REJECTED else ""
            line += [
                f"{a.accelerator} × {a.replicas}",
                f"{a.cost:,.0f}",
                f"{r.binding} {r.ratio:.2f} ± {r.ci:.2f}{rej}",
                "yes" if r.met else "NO",
            ]
            if fewer:
                f = res.get((name, model, srv, -1))
                t[3] += bool(f and f.met)
        line.append(f"{costs[1] / costs[0]:.2f}" if costs[0] > 0 else "-")
        if fewer:
            marks = []
            for model in ("inferno", "accurate"):
                f = res.get((name, model, srv, -1))
                marks.append("-" if f is None else ("yes" if f.met else "no"))
            line.append(" / ".join(marks))
        rows.append(line)
    print(f"\n## {name}: {len(system.servers)} servers\n")
    print_table(head, rows, markdown)
    ci, ca = tot["inferno"][0], tot["accurate"][0]
    print(
        f"\n{name}: inferno cost {ci:,.0f}, SLO met {tot['inferno'][1]}/{tot['inferno'][2]}; "
        f"accurate cost {ca:,.0f}, SLO met {tot['accurate'][1]}/{tot['accurate'][2]}; "
        f"accurate/inferno {ca / ci:.3f}"
    )
    if fewer:
        print(
            f"{name}: with one replica fewer, still met: inferno {tot['inferno'][3]}, "
            f"accurate {tot['accurate'][3]} (of the servers with more than one replica)"
        )


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--systems", default="large,g2,g1,g2exp")
    ap.add_argument("--requests", type=int, default=30_000, help="arrivals per server")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--fewer", action="store_true", help="also emulate one replica fewer")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    t0 = time.perf_counter()
    chosen = systems([s for s in args.systems.split(",") if s])
    work: list[Job] = []
    sols: dict[str, dict[str, Solution]] = {}
    for name, system in chosen.items():
        sols[name] = {}
        for model in ("inferno", "accurate"):
            jobs, sol = jobs_of(name, system, model, args.requests, args.fewer)
            work += jobs
            sols[name][model] = sol
    order = sorted(work, key=lambda j: -j.replicas)  # long jobs first
    if args.jobs <= 1:
        done = [emulate(j) for j in order]
    else:
        with Pool(args.jobs) as pool:
            done = pool.map(emulate, order, chunksize=1)
    res = {r.key: r for r in done}
    print(
        f"{len(work)} emulated allocations, {args.requests:,} arrivals each, "
        f"{time.perf_counter() - t0:.0f} s wall ({args.jobs} jobs)"
    )
    for name, system in chosen.items():
        report(name, system, sols[name], res, args.fewer, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
