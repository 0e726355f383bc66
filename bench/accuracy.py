"""Model accuracy benchmark: the analytic model against the emulator, point by point.

For every profile kind (batch, G0, G1, G2, G3), a few parameter sets, batch limits N, token lengths
and utilisations ρ = λ/μ(N) in {0.1, 0.3, 0.5, 0.7, 0.85, 0.95}, the model's mean and 95th
percentile of latency and TTFT, its 95th percentile of the wait, its mean ITL and its blocking
probability are compared with one replica simulated by :mod:`inferno.emulator` at the same λ, N, K
(the model's default queue, plus K = 4 at N = 1 for some sets) and tokens. Each simulation starts
empty, drops a warm-up (the first 5% of its arrivals; LLM kinds 75k–900k arrivals per point, more
near saturation, the batch kind three times as many) and splits the rest, by arrival order, into 20
consecutive batches: the batch means give 95% confidence intervals (Student t, 19 degrees of
freedom) around the estimates from all measured requests. Relative error = (model − sim) / sim:
positive means the model is pessimistic.

Two service modes (``--service``):

- ``exponential``: the model's own assumption, as near as the emulator gets. Batch kind:
  exponential batch times. LLM kinds: exponential iteration times *and* geometric output lengths
  (mean = the model's output tokens), so a request's service requirement is memoryless; the
  batch kind is modelled with ``batching="chain"``. The
  emulator then reproduces the model's chain exactly for the batch kind and G0 at N = 1 (M/M/1/K,
  any K), marked † in the tables; everywhere else it differs by its mechanics (see
  ``bench/README.md`` and ``docs/accuracy.md``).
- ``deterministic``: what servers do. Fixed batch/iteration times from the profile's formulas and
  fixed token lengths (every request the model's average shape). The batch kind is modelled as
  Triton batches (``batching="triton"``: the bulk model, means and percentiles).

``--lengths`` overrides the length distribution (``fixed`` or ``geometric``) of either mode:
``--service deterministic --lengths geometric`` separates the iteration times from the lengths.

Usage::

    python bench/accuracy.py [--service exponential|deterministic|both] [--lengths ...]
                             [--quick] [--markdown] [--long] [--jobs N] [--scale 1.0]

A full run of both modes takes 6–8 minutes with 2 jobs, ``--quick`` well under one. Plain
output is a summary by kind and N, then one row per (point, metric): model, simulation ± CI,
relative error, inside the CI or not. ``--markdown`` prints the summary and one row per point
(relative error % ± the CI half-width in %, ✗ when the model is outside the CI) in a
``<details>`` block; ``--long`` gives the per-metric rows in markdown instead.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from multiprocessing import Pool
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray
from scipy.stats import t as student_t

from inferno.emulator import Fixed, Lengths, Poisson, ServerSpec, Simulation
from inferno.model.points import OperatingPoints
from inferno.model.profiles import (
    BatchProfile,
    G0Profile,
    G1Profile,
    G2Profile,
    G3Profile,
    Profile,
    Tokens,
)
from inferno.model.quantiles import latency_quantiles, ttft_quantiles, wait_quantiles
from inferno.units import MS_PER_MIN

F = NDArray[np.float64]

RHOS = (0.1, 0.3, 0.5, 0.7, 0.85, 0.95)
QUICK_RHOS = (0.3, 0.7, 0.95)
BATCHES = 20
WARMUP = 0.05
Q = 0.95
T_CRIT = float(student_t.ppf(0.975, BATCHES - 1))
#: the metrics compared, in table order: (key, column header)
METRICS = (
    ("lat", "latency mean"),
    ("lat95", "latency p95"),
    ("wait95", "wait p95"),
    ("ttft", "TTFT mean"),
    ("ttft95", "TTFT p95"),
    ("itl", "ITL mean"),
    ("block", "blocking"),
)
#: the metrics of the summary table
SUMMARY = ("lat", "lat95", "ttft", "ttft95", "itl")
#: below this blocking probability (model and simulation) the metric is not reported
BLOCK_FLOOR = 1e-3
#: times below this (ms, model and simulation) count as zero: no relative error
TIME_FLOOR = 1e-6


# --- lengths ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Geometric(Lengths):
    """Geometric lengths on {1, 2, ...} with the given mean: with exponential iterations a
    request's service time is then exponential (a geometric sum of exponentials)."""

    mean_tokens: float

    @property
    def mean(self) -> float:
        return float(self.mean_tokens)

    @property
    def minimum(self) -> int:
        return 1

    def sample(self, n: int, rng: np.random.Generator) -> NDArray[np.int64]:
        out: NDArray[np.int64] = rng.geometric(1.0 / self.mean_tokens, n).astype(np.int64)
        return out


# --- the grid -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Case:
    """A profile at one batch limit, queue and request shape (ρ varies)."""

    kind: str
    label: str  # the parameter set
    profile: Profile
    n: int
    in_tokens: int = 0
    out_tokens: int = 0
    queue: int | None = None  # K − N; None: the model's default for the kind

    @property
    def llm(self) -> bool:
        return not isinstance(self.profile, BatchProfile)

    @property
    def tokens(self) -> str:
        return f"{self.in_tokens}/{self.out_tokens}" if self.llm else "-"


@dataclass(frozen=True, slots=True)
class Point:
    case: Case
    rho: float
    requests: int
    service: str  # "exponential" | "deterministic"
    lengths: str  # "fixed" | "geometric"
    seed: int


def _profile(kind: str, params: tuple[float, ...], n: int) -> Profile:
    if kind == "batch":
        return BatchProfile(params[0], params[1], n)
    if kind == "G0":
        return G0Profile(params[0], params[1], n, 1.0)
    if kind == "G1":
        return G1Profile(params[0], params[1], params[2], params[3], n, 1.0)
    if kind == "G2":
        return G2Profile(params[0], params[1], params[2], n)
    return G3Profile(params[0], params[1], params[2], n, None, int(params[3]))


class Family(NamedTuple):
    """One parameter set of a kind and the batch limits and lengths it is run at."""

    kind: str
    label: str
    params: tuple[float, ...]
    in_tokens: int
    outs: tuple[int, ...]  # output lengths (0 for the batch kind)
    batches: tuple[int, ...]  # N
    k_limited: bool = False  # also N = 1 with a small waiting room (K = 1 + SMALL_QUEUE)


G1_SET = (6.9, 0.08, 12.1, 0.002)
G3_SET = (16.0, 0.067, 6.67e-4, 4096.0)
FULL_GRID = (
    Family("batch", "α5 β1", (5.0, 1.0), 0, (0,), (1, 8, 32), True),
    Family("batch", "α20 β0.5", (20.0, 0.5), 0, (0,), (1, 8, 32)),
    Family("G0", "granite-13b/A100", (20.58, 0.41), 0, (128, 1024), (1, 8, 32), True),
    Family("G0", "llama3-8b/A100", (12.93, 0.59), 0, (1024,), (1, 8, 32)),
    Family("G1", "α6.9 β0.08 γ12.1 δ0.002", G1_SET, 128, (128, 1024), (1, 8, 32)),
    Family("G2", "α12 β0.05 γ5e-4", (12.0, 0.05, 5e-4), 128, (128, 512), (1, 8, 32)),
    Family("G2", "α8 β0.03 γ3e-4", (8.0, 0.03, 3e-4), 128, (512,), (8, 32)),
    Family("G3", "α16 β0.067 γ6.67e-4 M4096", G3_SET, 2048, (256,), (1, 8, 32)),
)
QUICK_GRID = (
    Family("batch", "α5 β1", (5.0, 1.0), 0, (0,), (1, 8), True),
    Family("G0", "granite-13b/A100", (20.58, 0.41), 0, (128,), (1, 8)),
    Family("G1", "α6.9 β0.08 γ12.1 δ0.002", G1_SET, 128, (128,), (8,)),
    Family("G2", "α12 β0.05 γ5e-4", (12.0, 0.05, 5e-4), 128, (512,), (8,)),
)
#: the waiting room of the K-limited N = 1 cases (K = 4)
SMALL_QUEUE = 3


def cases(grid: Iterable[Family]) -> list[Case]:
    out = []
    for f in grid:
        for out_tokens in f.outs:
            for n in f.batches:
                prof = _profile(f.kind, f.params, n)
                out.append(Case(f.kind, f.label, prof, n, f.in_tokens, out_tokens))
            if f.k_limited:
                prof = _profile(f.kind, f.params, 1)
                out.append(Case(f.kind, f.label, prof, 1, f.in_tokens, out_tokens, SMALL_QUEUE))
    return out


def requests_for(rho: float, base: float) -> int:
    """More requests near saturation, where the runs are correlated over longer times."""
    return int(base * min(max(0.25, 0.15 / (1.0 - rho)), 3.0))


# --- one point ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    point: Point
    k: int
    lam: float  # /ms
    model: dict[str, float]
    sim: dict[str, tuple[float, float]]  # metric -> (estimate, CI half-width)
    measured: int
    wall: float


def model_values(
    case: Case, rho: float, service: str = "deterministic"
) -> tuple[dict[str, float], float, int]:
    """The model's metrics at ρ, the arrival rate (/ms) and K. The batch kind is modelled as
    the server it is compared with: Triton's batching (the bulk model) for deterministic batch
    times, the chain for exponential ones (which the emulator reproduces at N = 1)."""
    tokens = Tokens(float(case.in_tokens), float(case.out_tokens))
    profile = case.profile
    if isinstance(profile, BatchProfile):
        profile = replace(profile, batching="chain" if service == "exponential" else "triton")
    pts = OperatingPoints.of([profile], [tokens], batch=[case.n], max_queue=[case.queue])
    lam = rho * float(pts.mu_n[0])
    rate = np.array([lam])
    m = pts.metrics(rate)
    out = {
        "lat": float(m.response[0]),
        "lat95": float(latency_quantiles(pts, rate, [Q])[0, 0]),
        "wait95": float(wait_quantiles(pts, rate, Q)[0]),
        "ttft": float(m.ttft[0]),
        "ttft95": float(ttft_quantiles(pts, rate, Q)[0]) if case.llm else math.nan,
        "itl": float(m.itl[0]),
        "block": float(m.blocking[0]),
    }
    return out, lam, int(pts.n_max[0])


def _quantile(x: F) -> float:
    return float(np.quantile(x, Q)) if x.size else math.nan


def _stats(cols: dict[str, F]) -> dict[str, float]:
    """Every metric of one set of measured requests (``rejected`` is 1.0 for a rejection)."""
    arr, start, first, done, n_out = (
        cols["arrival"],
        cols["start"],
        cols["first"],
        cols["done"],
        cols["out"],
    )
    rejected = cols["rejected"] > 0.5
    ok = ~rejected
    lat = (done - arr)[ok]
    wait = (start - arr)[ok]
    ttft = (first - arr)[ok]
    multi = ok & (n_out > 1)
    tokens = float((n_out[multi] - 1).sum())
    itl = float((done - first)[multi].sum()) / tokens if tokens > 0 else math.nan
    return {
        "lat": float(lat.mean()),
        "lat95": _quantile(lat),
        "wait95": _quantile(wait),
        "ttft": float(ttft.mean()) if np.isfinite(ttft).all() else math.nan,
        "ttft95": _quantile(ttft) if np.isfinite(ttft).all() else math.nan,
        "itl": itl,
        "block": float(rejected.mean()),
    }


def simulate(
    point: Point, lam: float, k: int, latency_hint: float
) -> tuple[dict[str, tuple[float, float]], int]:
    """(metric -> (estimate, 95% CI half-width), measured requests) from one long run."""
    case = point.case
    if case.llm:
        out: Lengths = (
            Geometric(float(case.out_tokens))
            if point.lengths == "geometric"
            else Fixed(case.out_tokens)
        )
        extra = {"input_tokens": Fixed(case.in_tokens), "output_tokens": out}
    else:
        extra = {}
    spec = ServerSpec(
        case.profile,
        Poisson(lam * MS_PER_MIN),
        batch_size=case.n,
        max_queue=k - case.n,
        service=point.service,  # type: ignore[arg-type]
        **extra,  # type: ignore[arg-type]
    )
    sim = Simulation({"s": spec}, seed=point.seed)
    t_end = point.requests / lam
    t_warm = WARMUP * t_end
    sim.run_until(t_end)
    step = max(20.0 * latency_hint, 1_000.0)
    while True:
        rec = sim.records("s")
        lo = int(np.searchsorted(rec.arrival, t_warm))
        hi = int(np.searchsorted(rec.arrival, t_end))
        rejected = rec.reason[lo:hi] != 0
        if bool((np.isfinite(rec.completion[lo:hi]) | rejected).all()):
            break
        sim.run_until(sim.now + step)
    cols = {
        "arrival": rec.arrival[lo:hi],
        "start": rec.start[lo:hi],
        "first": rec.first_token[lo:hi] if case.llm else np.full(hi - lo, np.nan),
        "done": rec.completion[lo:hi],
        "out": rec.output_tokens[lo:hi].astype(np.float64),
        "rejected": rejected.astype(np.float64),
    }
    total = _stats(cols)
    edges = np.linspace(0, hi - lo, BATCHES + 1).astype(np.intp)
    per = [_stats({c: v[a:b] for c, v in cols.items()}) for a, b in pairwise(edges.tolist())]
    res = {}
    for key, _ in METRICS:
        vals = np.array([p[key] for p in per])
        hw = T_CRIT * float(vals.std(ddof=1)) / math.sqrt(BATCHES)
        res[key] = (total[key], hw)
    return res, hi - lo


def run_point(point: Point) -> Row:
    t0 = time.perf_counter()
    model, lam, k = model_values(point.case, point.rho, point.service)
    sim, measured = simulate(point, lam, k, model["lat"])
    return Row(point, k, lam, model, sim, measured, time.perf_counter() - t0)


# --- reporting ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cell:
    model: float
    sim: float
    hw: float

    @property
    def shown(self) -> bool:
        return math.isfinite(self.model) and math.isfinite(self.sim)

    @property
    def rel(self) -> float:
        """(model − sim)/sim; 0 when both are zero, NaN when only the simulation is."""
        if abs(self.sim) <= TIME_FLOOR:
            return 0.0 if abs(self.model) <= TIME_FLOOR else math.nan
        return (self.model - self.sim) / self.sim

    @property
    def rel_hw(self) -> float:
        return self.hw / abs(self.sim) if abs(self.sim) > TIME_FLOOR else 0.0

    @property
    def inside(self) -> bool:
        return abs(self.model - self.sim) <= max(self.hw, TIME_FLOOR)


def cell(row: Row, key: str) -> Cell | None:
    m = row.model[key]
    s, hw = row.sim[key]
    c = Cell(m, s, hw)
    if not c.shown:
        return None
    if key == "block" and m < BLOCK_FLOOR and s < BLOCK_FLOOR:
        return None
    return c


def exact(row: Row) -> bool:
    """Whether the emulator runs the model's chain itself: exponential service at N = 1 for the
    batch kind and G0 (with geometric lengths)."""
    p = row.point
    if p.service != "exponential" or p.case.n != 1:
        return False
    return p.case.kind == "batch" or (p.case.kind == "G0" and p.lengths == "geometric")


def _pct(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{100.0 * x:+.1f}"


def fmt_cell(c: Cell | None) -> str:
    if c is None:
        return "—"
    mark = "" if c.inside else " ✗"
    if not math.isfinite(c.rel):
        return "n/a" + mark
    return f"{_pct(c.rel)} ±{100.0 * c.rel_hw:.1f}{mark}"


def _num(x: float) -> str:
    if not math.isfinite(x):
        return "—"
    if x == 0.0:
        return "0"
    if abs(x) < 0.01:
        return f"{x:.2e}"
    return f"{x:.4g}" if abs(x) < 1e4 else f"{x:.0f}"


def long_rows(rows: Sequence[Row]) -> tuple[list[str], list[list[str]]]:
    head = [
        "kind",
        "set",
        "N",
        "K",
        "in/out",
        "ρ",
        "metric",
        "model",
        "sim ± CI",
        "rel err %",
        "in CI",
    ]
    body = []
    for r in rows:
        c_ = r.point.case
        for key, name in METRICS:
            c = cell(r, key)
            if c is None:
                continue
            body.append(
                [
                    c_.kind,
                    c_.label,
                    str(c_.n),
                    str(r.k),
                    c_.tokens,
                    f"{r.point.rho:g}",
                    name,
                    _num(c.model),
                    f"{_num(c.sim)} ± {_num(c.hw)}",
                    _pct(c.rel),
                    "yes" if c.inside else "NO",
                ]
            )
    return head, body


def wide_rows(rows: Sequence[Row]) -> tuple[list[str], list[list[str]]]:
    head = ["kind", "set", "N", "K", "in/out", "ρ", "model latency ms"]
    head += [name for _, name in METRICS]
    body = []
    for r in rows:
        c_ = r.point.case
        kind = c_.kind + (" †" if exact(r) else "")
        line = [kind, c_.label, str(c_.n), str(r.k), c_.tokens, f"{r.point.rho:g}"]
        line.append(_num(r.model["lat"]))
        line += [fmt_cell(cell(r, key)) for key, _ in METRICS]
        body.append(line)
    return head, body


def summary_rows(rows: Sequence[Row]) -> tuple[list[str], list[list[str]]]:
    """Per (kind, N): the range of relative errors of each metric over sets, tokens and ρ, and
    the share of cells inside the CI."""
    shown = [m for m in METRICS if m[0] in SUMMARY]
    head = ["kind", "N", "points"] + [name for _, name in shown] + ["inside CI"]
    groups: dict[tuple[str, int, bool], list[Row]] = {}
    for r in rows:
        group = (r.point.case.kind, r.point.case.n, r.point.case.queue is not None)
        groups.setdefault(group, []).append(r)
    body = []
    for (kind, n, small), rs in groups.items():
        line = [
            kind + (" †" if exact(rs[0]) else ""),
            f"{n}" + (f" (K={n + SMALL_QUEUE})" if small else ""),
            str(len(rs)),
        ]
        inside = total = 0
        for key, _ in shown:
            rel = [c.rel for r in rs if (c := cell(r, key)) is not None and math.isfinite(c.rel)]
            line.append(f"{_pct(min(rel))} … {_pct(max(rel))}" if rel else "—")
        for r in rs:
            for key, _ in METRICS:
                c = cell(r, key)
                if c is not None:
                    total += 1
                    inside += c.inside
        line.append(f"{inside}/{total}")
        body.append(line)
    return head, body


def render(head: list[str], body: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(b) + " |" for b in body]
        return "\n".join(lines)
    widths = [
        max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)
    ]
    lines = ["  ".join(h.rjust(w) for h, w in zip(head, widths, strict=True))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(b, widths, strict=True)) for b in body]
    return "\n".join(lines)


# --- main ---------------------------------------------------------------------------------------


def points_for(service: str, lengths: str, quick: bool, scale: float) -> list[Point]:
    grid = QUICK_GRID if quick else FULL_GRID
    rhos = QUICK_RHOS if quick else RHOS
    base = (100_000.0 if quick else 300_000.0) * scale
    if lengths == "auto":
        lengths = "geometric" if service == "exponential" else "fixed"
    out: list[Point] = []
    for case in cases(grid):
        # batch-kind runs are ~3x cheaper per request: buy tighter intervals with it
        b = base * (3.0 if case.kind == "batch" else 1.0)
        for rho in rhos:
            seed = 1_000 * len(out) + (1 if service == "exponential" else 2)
            out.append(Point(case, rho, requests_for(rho, b), service, lengths, seed))
    return out


def run(points: list[Point], jobs: int) -> list[Row]:
    # the slowest (most requests) first, so the pool's workers end together
    order = sorted(range(len(points)), key=lambda i: -points[i].requests)
    if jobs <= 1:
        done = [run_point(points[i]) for i in order]
    else:
        with Pool(jobs) as pool:
            done = pool.map(run_point, [points[i] for i in order], chunksize=1)
    rows: list[Row | None] = [None] * len(points)
    for i, r in zip(order, done, strict=True):
        rows[i] = r
    return [r for r in rows if r is not None]


def report(
    rows: list[Row], service: str, lengths: str, args: argparse.Namespace, wall: float
) -> None:
    md = args.markdown
    checked = [r for r in rows if exact(r)]
    n_in = sum(c.inside for r in checked for k, _ in METRICS if (c := cell(r, k)) is not None)
    n_all = sum(1 for r in checked for k, _ in METRICS if cell(r, k) is not None)
    measured = sum(r.measured for r in rows)
    title = f"service {service}, {lengths} lengths"
    print(f"\n### {title}\n" if md else f"\n== {title} ==")
    print(
        f"{len(rows)} points, {measured:,} measured requests, {wall:.0f} s wall "
        f"({args.jobs} jobs); relative error % = (model − sim)/sim, ± the 95% CI half-width of "
        "the simulation (batch means), ✗ = model outside the CI."
    )
    if checked:
        print(
            f"Rows marked † run the model's chain itself: {n_in}/{n_all} of their cells inside the "
            "95% CI (about 95% expected)."
        )
    print()
    print(render(*summary_rows(rows), md))
    print()
    if md and not args.long:
        print(f"<details><summary>every point ({title})</summary>\n")
        print(render(*wide_rows(rows), md))
        print("\n</details>")
    else:
        print(render(*long_rows(rows), md))
    sys.stdout.flush()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--service", choices=("exponential", "deterministic", "both"), default="both")
    ap.add_argument("--lengths", choices=("auto", "fixed", "geometric"), default="auto")
    ap.add_argument(
        "--quick", action="store_true", help="a small grid: ~40 s wall, ~75 s CPU on 2 cores"
    )
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--long", action="store_true", help="per-metric rows in markdown too")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the requests per point")
    args = ap.parse_args()
    services = ("exponential", "deterministic") if args.service == "both" else (args.service,)
    for service in services:
        lengths = args.lengths
        if lengths == "auto":
            lengths = "geometric" if service == "exponential" else "fixed"
        t0 = time.perf_counter()
        rows = run(points_for(service, lengths, args.quick, args.scale), args.jobs)
        report(rows, service, lengths, args, time.perf_counter() - t0)


if __name__ == "__main__":
    main()
