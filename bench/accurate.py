"""Accurate model vs Inferno's chain vs the emulator, for the LLM kinds (G0–G3).

For each case (kind, parameter set, batch limit N, input/output tokens, output-length
distribution) and load ρ = λ / μ(N) (μ(N) the chain's capacity), one replica is emulated
(:mod:`inferno.emulator`, deterministic iterations, Poisson arrivals) and compared with both
models: mean and 95th percentile of latency and TTFT, mean wait and mean ITL. Each simulation
drops a 5% warm-up and gives 95% confidence intervals by 20 batch means (as
``bench/accuracy.py``). Cells are
(model − sim)/sim in %; the report ends with the worst cells of each model.

Lengths: ``fixed`` (every request ``out`` tokens), ``exp`` (the emulator's rounded exponential,
CV 1) and ``lognormal`` (CV 1.5, rounded, at least 1). The accurate model is told each CV and
family (``outTokensDist``: lognormal for the last; ``--cv-only``: the CV alone, so gamma).

Input lengths are fixed unless ``--inputs exp|lognormal`` draws every prompt (of the kinds that
have one: G1–G3) from that distribution (lognormal: CV 1), and the accurate model is told their
CV and family (``inTokensCOV``, ``inTokensDist``; ``--untold-inputs``: not told, the model
before it took them).

Usage::

    python bench/accurate.py [--quick] [--jobs N] [--scale 1.0] [--cv-only] [--markdown]
                             [--inputs exp|lognormal [--untold-inputs]] [--resolve K]
                             [--max-out T [--untold-max]] [--only LABEL] [--rho 0.5,0.7]

``--max-out T`` caps the emulated output lengths at T tokens, as a server's ``max_tokens`` (or
its context) does; the models are told the served lengths' mean and CV, which is what a collector
measures, and the accurate model the cap (``outTokensMax``; not with ``--untold-max``).
Without it the lognormal's tail is unbounded: at mean 512 and CV 1.5, 1 request in 10⁴ asks for
more than 16,384 tokens. ``--only`` keeps the cases whose label (``G2 N=32 128/512 lognormal``)
contains the text, ``--rho`` sets the loads.

``--resolve K`` emulates again, with K times the arrivals, every point within 95% of the
accurate model's capacity where some metric's 95% CI is as wide as its bound (±10% on the
means, ±15% on the p95s), so that more cells can show the model in or out of the bound.

``--quick`` (3 cases × 3 loads, ~1 min on 2 cores) is what ``tests/model/test_accurate.py``
checks in a smaller form; the full grid takes about 10 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from dataclasses import dataclass, replace
from itertools import pairwise
from multiprocessing import Pool

import numpy as np
from numpy.typing import NDArray
from scipy.stats import t as student_t

from inferno.emulator import (
    Exponential,
    Fixed,
    Lengths,
    LogNormal,
    Poisson,
    ServerSpec,
    Simulation,
)
from inferno.model.accurate import AccuratePoints
from inferno.model.points import OperatingPoints
from inferno.model.profiles import G0Profile, G1Profile, G2Profile, G3Profile, Profile, Tokens
from inferno.model.quantiles import latency_quantiles, ttft_quantiles
from inferno.units import MS_PER_MIN

F = NDArray[np.float64]

BATCHES = 20
WARMUP = 0.05
Q = 0.95
T_CRIT = float(student_t.ppf(0.975, BATCHES - 1))
LOGNORMAL_CV = 1.5
INPUT_LOGNORMAL_CV = 1.0
#: (key, header): the compared metrics
METRICS = (
    ("lat", "latency mean"),
    ("lat95", "latency p95"),
    ("wait", "wait mean"),
    ("ttft", "TTFT mean"),
    ("ttft95", "TTFT p95"),
    ("itl", "ITL mean"),
)


def lengths_of(
    name: str, out: int, lognormal_cv: float = LOGNORMAL_CV, cap: int | None = None
) -> tuple[Lengths, float, float]:
    """The emulator's distribution (drawn lengths stop at ``cap``) and its coefficient of
    variation and mean, measured on a sample as a collector would measure served lengths."""
    dist: Lengths
    if name == "fixed" or out <= 0:
        n = out if cap is None else min(out, cap)
        return Fixed(n), 0.0, float(n)
    if name == "exp":
        dist = Exponential(float(out), cap)
    else:
        dist = LogNormal(float(out), lognormal_cv, cap)
    x = dist.sample(400_000, np.random.default_rng(0)).astype(np.float64)
    return dist, float(x.std() / x.mean()), float(x.mean())


@dataclass(frozen=True, slots=True)
class Case:
    kind: str
    label: str
    profile: Profile
    n: int
    in_tokens: int
    out_tokens: int
    lengths: str
    inputs: str = "fixed"  # the input lengths: fixed, exp or lognormal (INPUT_LOGNORMAL_CV)
    max_out: int | None = None  # the most output tokens a request gets (None: no cap)
    max_told: bool = True  # the accurate model is told max_out (outTokensMax)

    @property
    def where(self) -> str:
        return f"{self.kind} N={self.n} {self.in_tokens}/{self.out_tokens} {self.lengths}"


def _profile(kind: str, params: tuple[float, ...], n: int) -> Profile:
    if kind == "G0":
        return G0Profile(params[0], params[1], n, 1.0)
    if kind == "G1":
        return G1Profile(params[0], params[1], params[2], params[3], n, 1.0)
    if kind == "G2":
        return G2Profile(params[0], params[1], params[2], n)
    return G3Profile(params[0], params[1], params[2], n, None, int(params[3]))


G1_SET = ("α6.9 β0.08 γ12.1 δ0.002", (6.9, 0.08, 12.1, 0.002))
G2_SET = ("α12 β0.05 γ5e-4", (12.0, 0.05, 5e-4))
G3_SET = ("α16 β0.067 γ6.67e-4 M4096", (16.0, 0.067, 6.67e-4, 4096.0))
G0_SET = ("granite-13b/A100", (20.58, 0.41))
RHOS = (0.3, 0.5, 0.7, 0.85, 0.95)
QUICK_RHOS = (0.5, 0.85, 0.95)


def grid(quick: bool) -> list[Case]:
    out: list[Case] = []

    def add(kind: str, s: tuple[str, tuple[float, ...]], n: int, i: int, o: int, ln: str) -> None:
        out.append(Case(kind, s[0], _profile(kind, s[1], n), n, i, o, ln))

    if quick:
        add("G1", G1_SET, 32, 128, 128, "fixed")
        add("G2", G2_SET, 8, 128, 512, "exp")
        add("G2", G2_SET, 32, 128, 128, "lognormal")
        return out
    for ln in ("fixed", "exp", "lognormal"):
        for n in (1, 8, 32):
            add("G1", G1_SET, n, 128, 128, ln)
            add("G2", G2_SET, n, 128, 128, ln)
            add("G2", G2_SET, n, 128, 512, ln)
        add("G0", G0_SET, 8, 0, 128, ln)
        add("G3", G3_SET, 8, 2048, 256, ln)
    return out


@dataclass(frozen=True, slots=True)
class Row:
    case: Case
    rho: float
    chain: dict[str, float]
    accurate: dict[str, float]
    sim: dict[str, tuple[float, float]]
    wall: float
    rho_acc: float = math.nan  # λ over the accurate model's own capacity μ(N)


def model_values(
    case: Case,
    rho: float,
    cv: float,
    family: str | None = None,
    inputs: tuple[float, str | None] = (0.0, None),
    out_mean: float | None = None,
) -> tuple[dict[str, float], ...]:
    """(chain, accurate) metrics at ρ·μ(N) of the chain, and the rate (/ms) as a 1-key dict;
    ``family``: the lengths' family the accurate model is told (None: the default, gamma);
    ``inputs``: the input lengths' CV and family it is told; ``out_mean``: the mean output length
    both are told (default the case's)."""
    out = float(case.out_tokens) if out_mean is None else out_mean
    tokens = Tokens(float(case.in_tokens), out)
    chain = OperatingPoints.of([case.profile], [tokens], batch=[case.n])
    acc = AccuratePoints.of_accurate(
        [case.profile],
        [tokens],
        out_cv=[cv],
        out_dist=[family],
        in_cv=[inputs[0]],
        in_dist=[inputs[1]],
        out_max=[case.max_out if case.max_told else None],
        batch=[case.n],
    )
    lam = np.array([rho * float(chain.mu_n[0])])
    res = []
    for pts in (chain, acc):
        m = pts.metrics(lam)
        res.append(
            {
                "lat": float(m.response[0]),
                "lat95": float(latency_quantiles(pts, lam, [Q])[0, 0]),
                "wait": float(m.wait[0]),
                "ttft": float(m.ttft[0]),
                "ttft95": float(ttft_quantiles(pts, lam, Q)[0]),
                "itl": float(m.itl[0]),
            }
        )
    rho_acc = float(lam[0] / acc.mu_n[0])
    extra = {"lam": float(lam[0]), "k": float(chain.n_max[0]), "rho_acc": rho_acc}
    return res[0], res[1], extra


def _stats(arr: F, start: F, first: F, done: F, n_out: F) -> dict[str, float]:
    lat, wait, ttft = done - arr, start - arr, first - arr
    multi = n_out > 1
    tokens = float((n_out[multi] - 1).sum())
    return {
        "lat": float(lat.mean()),
        "lat95": float(np.quantile(lat, Q)),
        "wait": float(wait.mean()),
        "ttft": float(ttft.mean()),
        "ttft95": float(np.quantile(ttft, Q)),
        "itl": float((done - first)[multi].sum()) / tokens if tokens > 0 else math.nan,
    }


def simulate(
    case: Case, lam: float, k: int, requests: int, seed: int
) -> dict[str, tuple[float, float]]:
    """metric -> (estimate, 95% CI half-width) from one emulated replica."""
    dist, _, _ = lengths_of(case.lengths, case.out_tokens, cap=case.max_out)
    spec = ServerSpec(
        case.profile,
        Poisson(lam * MS_PER_MIN),
        batch_size=case.n,
        max_queue=k - case.n,
        service="deterministic",
        input_tokens=lengths_of(case.inputs, case.in_tokens, INPUT_LOGNORMAL_CV)[0],
        output_tokens=dist,
    )
    sim = Simulation({"s": spec}, seed=seed)
    t_end = requests / lam
    sim.run_until(t_end)
    while True:
        rec = sim.records("s")
        lo = int(np.searchsorted(rec.arrival, WARMUP * t_end))
        hi = int(np.searchsorted(rec.arrival, t_end))
        if bool((np.isfinite(rec.completion[lo:hi]) | (rec.reason[lo:hi] != 0)).all()):
            break
        sim.run_until(sim.now + 0.05 * t_end)
    ok = rec.reason[lo:hi] == 0
    rejected = 1.0 - float(ok.mean()) if ok.size else 0.0
    cols = [
        rec.arrival[lo:hi][ok],
        rec.start[lo:hi][ok],
        rec.first_token[lo:hi][ok],
        rec.completion[lo:hi][ok],
        rec.output_tokens[lo:hi][ok].astype(np.float64),
    ]
    total = _stats(*cols)
    edges = np.linspace(0, cols[0].size, BATCHES + 1).astype(np.intp)
    per = [_stats(*(c[a:b] for c in cols)) for a, b in pairwise(edges.tolist())]
    out = {}
    for key, _ in METRICS:
        vals = np.array([p[key] for p in per])
        out[key] = (total[key], T_CRIT * float(vals.std(ddof=1)) / math.sqrt(BATCHES))
    out["rejected"] = (rejected, 0.0)
    return out


def run_point(args: tuple[Case, float, float, int, bool, bool]) -> Row:
    case, rho, base, seed, cv_only, untold = args
    t0 = time.perf_counter()
    _, cv, served = lengths_of(case.lengths, case.out_tokens, cap=case.max_out)
    out_mean = None if case.max_out is None else served  # uncapped: the case's own mean
    family = "lognormal" if case.lengths == "lognormal" and not cv_only else None
    told: tuple[float, str | None] = (0.0, None)
    if not untold:
        in_cv = lengths_of(case.inputs, case.in_tokens, INPUT_LOGNORMAL_CV)[1]
        told = (in_cv, "lognormal" if case.inputs == "lognormal" else None)
    chain, acc, extra = model_values(case, rho, cv, family, told, out_mean)
    requests = int(base * min(max(0.25, 0.15 / (1.0 - rho)), 3.0))
    sim = simulate(case, extra["lam"], int(extra["k"]), requests, seed)
    return Row(case, rho, chain, acc, sim, time.perf_counter() - t0, extra["rho_acc"])


def bound_of(key: str) -> float:
    """The issue's bound on a metric: ±10% on the means, ±15% on the 95th percentiles."""
    return 0.10 if key in ("lat", "ttft", "itl") else 0.15


def within_capacity(r: Row) -> bool:
    return r.rho_acc <= 0.95 * (1 + 1e-9)


def resolved(r: Row, key: str) -> bool:
    """The emulation's 95% CI of ``key`` is narrower than its bound: the cell can show the
    model in or out of it."""
    s, hw = r.sim[key]
    return hw < bound_of(key) * abs(s)


def unresolved(r: Row) -> bool:
    """A point within the accurate capacity with a metric (the mean wait aside) unresolved."""
    return within_capacity(r) and any(not resolved(r, k) for k, _ in METRICS if k != "wait")


def rel(model: float, sim: float) -> float:
    return (model - sim) / sim if abs(sim) > 1e-6 else math.nan


def _pct(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{100.0 * x:+.1f}"


def render(head: list[str], body: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        return "\n".join(lines + ["| " + " | ".join(b) + " |" for b in body])
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(head, widths, strict=True))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(b, widths, strict=True)) for b in body]
    return "\n".join(lines)


def report(rows: list[Row], markdown: bool) -> None:
    head = ["kind", "N", "in/out", "lengths", "ρ"]
    head += [f"{name} acc / chain (±CI)" for _, name in METRICS]
    head += ["ρ acc", "rejected %"]
    body = []
    worst: dict[str, list[tuple[float, str, str]]] = {"accurate": [], "chain": []}
    for r in rows:
        c = r.case
        where = f"{c.where} ρ={r.rho:g}"
        if c.inputs != "fixed":
            where += f" (in {c.inputs})"
        lengths = c.lengths if c.inputs == "fixed" else f"{c.lengths}, in {c.inputs}"
        line = [c.kind, str(c.n), f"{c.in_tokens}/{c.out_tokens}", lengths, f"{r.rho:g}"]
        for key, name in METRICS:
            s, hw = r.sim[key]
            ea, ec = rel(r.accurate[key], s), rel(r.chain[key], s)
            ci = hw / abs(s) if abs(s) > 1e-6 else math.nan
            line.append(f"{_pct(ea)} / {_pct(ec)} (±{100 * ci:.1f})")
            if key != "wait":
                worst["accurate"].append((abs(ea) if math.isfinite(ea) else 0.0, name, where))
                worst["chain"].append((abs(ec) if math.isfinite(ec) else 0.0, name, where))
        line += [f"{r.rho_acc:.2f}", f"{100 * r.sim['rejected'][0]:.2f}"]
        body.append(line)
    print(render(head, body, markdown))
    for model, cells in worst.items():
        cells.sort(reverse=True)
        print(f"\nworst cells, {model} model (|rel err|, wait mean excluded):")
        for err, name, where in cells[:8]:
            print(f"  {100 * err:6.1f}%  {name:13s} {where}")
    for key, name in METRICS:
        if key == "wait":
            continue
        bound = bound_of(key)
        errs = [abs(rel(r.accurate[key], r.sim[key][0])) for r in rows]
        errs = [e for e in errs if math.isfinite(e)]
        inside = sum(e <= bound for e in errs)
        print(f"{name}: accurate within ±{100 * bound:.0f}% in {inside}/{len(errs)} cells")
    # the grid is loads up to 95% of capacity — ρ is of the chain's capacity, which
    # overstates the real one where the batch's members slow it (G2 with long or varying
    # lengths) — and a cell says something only where the emulation resolves the bound: cells
    # at most at 95% of the accurate model's own capacity whose 95% CI is narrower than the bound
    print("\nwithin capacity (ρ acc ≤ 0.95) and resolved (CI < the bound):")
    for key, name in METRICS:
        if key == "wait":
            continue
        bound = bound_of(key)
        kept = [
            abs(rel(r.accurate[key], r.sim[key][0]))
            for r in rows
            if within_capacity(r) and resolved(r, key)
        ]
        kept = [e for e in kept if math.isfinite(e)]
        inside = sum(e <= bound for e in kept)
        print(f"{name}: accurate within ±{100 * bound:.0f}% in {inside}/{len(kept)} cells")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the requests per point")
    ap.add_argument(
        "--cv-only", action="store_true", help="tell the accurate model the lengths' CV, not family"
    )
    ap.add_argument(
        "--inputs",
        choices=("fixed", "exp", "lognormal"),
        default="fixed",
        help="the input lengths of the kinds with a prompt (G1–G3)",
    )
    ap.add_argument(
        "--untold-inputs", action="store_true", help="do not tell the model the input lengths"
    )
    ap.add_argument(
        "--resolve",
        type=float,
        default=0.0,
        help="emulate again, with this many times the arrivals, every point within the accurate "
        "capacity where a metric's CI is not narrower than its bound",
    )
    ap.add_argument(
        "--max-out",
        type=int,
        default=None,
        help="the most output tokens a request gets (a server's max_tokens): longer draws stop "
        "there, both models are told the served lengths' mean and CV, and the accurate model "
        "the cap",
    )
    ap.add_argument(
        "--untold-max",
        action="store_true",
        help="with --max-out: the accurate model is not told the cap",
    )
    ap.add_argument(
        "--only", default="", help="the cases whose label contains this, e.g. 'G2 N=32 128/512'"
    )
    ap.add_argument("--rho", default="", help="comma-separated loads instead of the grid's")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    if args.max_out is not None and args.max_out < 1:
        ap.error(f"--max-out must be ≥ 1, got {args.max_out}")
    if args.untold_max and args.max_out is None:
        ap.error("--untold-max needs --max-out")
    try:
        rhos = tuple(float(x) for x in args.rho.split(",")) if args.rho else None
    except ValueError:
        ap.error(f"--rho: expected comma-separated numbers, got {args.rho!r}")
    if rhos is None:
        rhos = QUICK_RHOS if args.quick else RHOS
    elif not all(0.0 < r < 10.0 for r in rhos):
        ap.error(f"--rho: every load must be in (0, 10), got {args.rho!r}")
    base = (60_000.0 if args.quick else 120_000.0) * args.scale
    cases = [replace(c, inputs=args.inputs) if c.in_tokens > 0 else c for c in grid(args.quick)]
    cases = [
        replace(c, max_out=args.max_out, max_told=not args.untold_max)
        for c in cases
        if args.only in c.where
    ]
    if args.inputs != "fixed":  # the kinds with a prompt only
        cases = [c for c in cases if c.in_tokens > 0]
    if not cases:
        ap.error(f"--only {args.only!r}: no case of the grid matches")
    work = [
        (case, rho, base, 7_000 + i, args.cv_only, args.untold_inputs)
        for i, (case, rho) in enumerate((c, r) for c in cases for r in rhos)
    ]
    t0 = time.perf_counter()
    order = sorted(range(len(work)), key=lambda i: -work[i][1])
    if args.jobs <= 1:
        done = [run_point(work[i]) for i in order]
    else:
        with Pool(args.jobs) as pool:
            done = pool.map(run_point, [work[i] for i in order], chunksize=1)
    at = {i: k for k, i in enumerate(order)}
    rows: list[Row] = [done[at[i]] for i in range(len(work))]
    again = [i for i, r in enumerate(rows) if unresolved(r)] if args.resolve > 0 else []
    if again:
        more = [(*work[i][:2], work[i][2] * args.resolve, *work[i][3:]) for i in again]
        with Pool(max(args.jobs, 1)) as pool:
            for i, r in zip(again, pool.map(run_point, more, chunksize=1), strict=True):
                rows[i] = r
    print(
        f"{len(work)} points, {time.perf_counter() - t0:.0f} s wall ({args.jobs} jobs); "
        "cells: (model − sim)/sim in %, accurate / chain, ± the simulation's 95% CI in %"
    )
    if args.resolve > 0:
        print(
            f"--resolve {args.resolve:g}: {len(again)} points within the accurate capacity had a "
            f"metric unresolved and were emulated again with {args.resolve:g}× the arrivals; "
            f"{sum(unresolved(rows[i]) for i in again)} still have one"
        )
    report(rows, args.markdown)


if __name__ == "__main__":
    main()
