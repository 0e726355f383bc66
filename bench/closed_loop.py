"""Closed-loop bench of ``inferno simulate``: every policy against the oracle, on a suite of loads.

Scenarios (``bench/scenarios/``, on ``samples/large``, seed 1, control every 30 s, 60 s start-up,
a 60 s measurement window with 5% noise, sizing on the 99th percentile, random routing):

- (a) ``demo-steps``: the bundled demo's steps (100% → 40% → 50% → 62.5%), 27 servers, 10 min;
- (b) ``diurnal``: one hour as one day, from 25% of each server's ``arrivalRate`` up to 95%, back;
- (c) ``steps-hour``: an hour of 5-minute steps, up by at most +26%, down by up to −37%;
- (d) ``bursts``: an hour of a Markov-modulated Poisson process (60% with bursts to 80%, +33%:
  the size of the steps' jumps);
- (e) ``replay``: an hour replayed from ``replay.csv`` (``bench/make_replay.py``: diurnal with
  noise and spikes);
- (f) ``spikes``, a stress case: bursts from 50% to 100% (×2) lasting about 2 minutes, as long as
  a new replica's start-up plus a period: no causal policy follows them, only capacity held all
  the time (static) meets them.

The hour-long ones simulate 9 of the 27 servers (3 models × 3 classes: llama3_8b, granite_13b,
llama_70b in Premium, Bronze and Free), which keeps the full suite to minutes on 2 cores (all 27
take about three times as long). Each scenario runs twice: with fixed output lengths (1024
tokens, as in the file) and with exponential ones (``tokens: {default: {out: {kind:
exponential}}}``; for the replay, its ``-exp`` series).

Policies (as in the files): ``inferno`` with its deployed defaults (no option), ``oracle`` (knows
each coming period's true peak, no start-up delay), ``static`` (sized for the run's peak), an HPA
sweep (targets 0.5–0.9) and a queue sweep (0.5, 0.75, 1 and 1.5 × the default target per
replica). The best of a sweep (``*``) is its cheapest instance meeting the SLO of 99% of the
requests, or, when none does, the one with the highest attainment.

Printed, per scenario × policy: the share of requests meeting their SLO, the cost relative to the
oracle's, to the static policy's and to the best HPA's, the Deployment changes and the rollouts
(changes of accelerator or batch size, each of which replaces every pod of the server).

Usage: python bench/closed_loop.py [--quick] [--jobs N] [--markdown] [--only NAME ...]
[--lengths fixed|exp ...] [--variant NAME:key=value,... [--variants-only]]

``--variant`` adds an ``inferno`` instance with some deployed settings changed (the names of
docs/kubernetes.md's settings table, lower case without the prefix: ``margin_z``,
``startup_time``, ``forecast``...), to see what each part of the policy costs or buys.

``--quick``: the first 15 minutes of each scenario on 3 servers. On the project's machine (2
cores) the full suite takes about 6 minutes with 2 jobs, ``--quick`` about 30 s.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from _tables import print_table  # bench/, first on sys.path when run as a script

from inferno.simulate import build_report, parse_scenario, run_scenario
from inferno.simulate.report import Report, times_oracle

ROOT = Path(__file__).resolve().parent
SCENARIOS_DIR = ROOT / "scenarios"
#: (letter, file stem), in the order of the issue
SCENARIOS = (
    ("a", "demo-steps"),
    ("b", "diurnal"),
    ("c", "steps-hour"),
    ("d", "bursts"),
    ("e", "replay"),
    ("f", "spikes"),
)
VARIANTS = ("fixed", "exp")
QUICK_DURATION_S = 900.0
QUICK_SERVERS = ("Premium-llama3_8b", "Bronze-granite_13b", "Free-llama3_8b")


@dataclass(frozen=True, slots=True)
class Outcome:
    """One scenario variant's run, as plain rows (cheap to send back from a worker)."""

    scenario: str
    variant: str
    servers: int
    duration_s: float
    requests: int
    wall_s: float
    headers: list[str]
    rows: list[list[str]]
    notes: list[str]


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    """``NAME:key=value,key=value`` → (NAME, {key: value}): an extra ``inferno`` instance with
    those deployed settings (e.g. ``z0:margin_z=0``); values are YAML scalars."""
    name, _, body = text.partition(":")
    if not name or not body:
        raise argparse.ArgumentTypeError(f"expected NAME:key=value[,key=value], got {text!r}")
    settings: dict[str, Any] = {}
    for item in body.split(","):
        key, eq, value = item.partition("=")
        if not eq:
            raise argparse.ArgumentTypeError(f"expected key=value, got {item!r}")
        settings[key.strip()] = yaml.safe_load(value)
    return name, settings


def variant_doc(
    doc: dict[str, Any],
    variant: str,
    quick: bool,
    extra: tuple[tuple[str, dict[str, Any]], ...] = (),
    only_extra: bool = False,
    seed: int | None = None,
) -> dict[str, Any]:
    """The scenario document of ``variant`` (``exp``: exponential output lengths; a replay
    reads its ``-exp`` series), shortened to :data:`QUICK_SERVERS` and
    :data:`QUICK_DURATION_S` when ``quick``; ``extra`` Inferno instances (:func:`parse_variant`)
    are added, and with ``only_extra`` the policies are only them, inferno and the oracle;
    ``seed`` replaces the scenario's (another draw of the same loads)."""
    out = copy.deepcopy(doc)
    if seed is not None:
        out["seed"] = seed
    if only_extra:
        out["policies"] = ["inferno", "oracle"]
    for name, settings in extra:
        out["policies"] = [*out.get("policies", []), {"inferno": {"label": name, **settings}}]
    if variant == "exp":
        out["tokens"] = {"default": {"out": {"kind": "exponential"}}}
        for spec in (out.get("traces") or {}).values():
            if spec.get("kind") == "replay":
                spec["server"] = f"{spec.get('server', '')}-exp"
    if quick:
        out["duration"] = min(float(out["duration"]), QUICK_DURATION_S)
        out["servers"] = list(QUICK_SERVERS)
        for key in ("traces", "tokens"):
            given = out.get(key) or {}
            out[key] = {k: v for k, v in given.items() if k == "default" or k in QUICK_SERVERS}
    return out


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b > 0 and math.isfinite(a) else "-"


def table(report: Report) -> tuple[list[str], list[list[str]]]:
    """One row per policy: SLO met, cost × oracle, × static, × best HPA, changes, rollouts."""
    static = next((p for p in report.policies if p.kind == "static"), None)
    hpa = next((s for s in report.sweeps if s.name == "hpa"), None)
    best_hpa = report.policy(hpa.best) if hpa is not None else None
    best = {s.best for s in report.sweeps}
    headers = ["policy", "SLO met", "× oracle", "× static", "× best HPA", "changes", "rollouts"]
    rows = []
    for p in report.policies:
        x_oracle = times_oracle(report, p)
        rows.append(
            [
                f"{p.name} *" if p.name in best else p.name,
                f"{100.0 * p.attainment:.2f}%",
                f"{x_oracle:.2f}×" if math.isfinite(x_oracle) else "-",
                _ratio(p.cost, static.cost) if static is not None else "-",
                _ratio(p.cost, best_hpa.cost) if best_hpa is not None else "-",
                str(p.changes),
                str(p.rollouts),
            ]
        )
    return headers, rows


def run_one(
    stem: str,
    variant: str,
    quick: bool,
    extra: tuple[tuple[str, dict[str, Any]], ...] = (),
    only_extra: bool = False,
    seed: int | None = None,
) -> Outcome:
    path = SCENARIOS_DIR / f"{stem}.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc = variant_doc(raw, variant, quick, extra, only_extra, seed)
    started = time.perf_counter()
    scenario = parse_scenario(doc, source=str(path), base=path.parent)
    report = build_report(run_scenario(scenario))
    wall = time.perf_counter() - started
    headers, rows = table(report)
    notes = [s.describe() for s in report.sweeps] + list(report.result.notes)
    return Outcome(
        scenario=stem,
        variant=variant,
        servers=len(report.result.initial),
        duration_s=scenario.duration_s,
        requests=report.policies[0].requests if report.policies else 0,
        wall_s=wall,
        headers=headers,
        rows=rows,
        notes=notes,
    )


Job = tuple[str, str, bool, tuple[tuple[str, dict[str, Any]], ...], bool, int | None]


def _run(job: Job) -> Outcome:
    return run_one(*job)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="15 minutes of each on 3 servers")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes")
    ap.add_argument("--markdown", action="store_true", help="tables for bench/README.md")
    ap.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        choices=[s for _, s in SCENARIOS],
        help="run only these scenarios",
    )
    ap.add_argument(
        "--lengths", nargs="+", choices=VARIANTS, default=list(VARIANTS), help="output lengths"
    )
    ap.add_argument(
        "--variant",
        action="append",
        type=parse_variant,
        default=[],
        metavar="NAME:key=value,...",
        help="also run inferno with these deployed settings (e.g. z0:margin_z=0; repeatable)",
    )
    ap.add_argument(
        "--variants-only",
        action="store_true",
        help="with --variant: run only inferno, the oracle and the variants (no baselines)",
    )
    ap.add_argument(
        "--seed",
        type=int,
        default=None,
        help="the scenarios' random seed (default: each scenario's own, 1)",
    )
    args = ap.parse_args()
    chosen = [(k, s) for k, s in SCENARIOS if args.only is None or s in args.only]
    extra = tuple(args.variant)
    jobs: list[Job] = [
        (s, v, args.quick, extra, args.variants_only, args.seed)
        for _, s in chosen
        for v in args.lengths
    ]
    started = time.perf_counter()
    if args.jobs <= 1:
        outcomes = [_run(j) for j in jobs]
    else:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            outcomes = list(pool.map(_run, jobs))
    wall = time.perf_counter() - started
    letters = dict((s, k) for k, s in chosen)
    headers: list[str] = []
    rows: list[list[str]] = []
    for o in outcomes:
        headers = ["scenario", "lengths", *o.headers]
        name = f"({letters[o.scenario]}) {o.scenario}"
        rows += [[name, o.variant, *r] for r in o.rows]
    print(
        f"closed loop{' (--quick)' if args.quick else ''}"
        f"{f' (seed {args.seed})' if args.seed is not None else ''}: {len(outcomes)} runs, "
        f"{args.jobs} job(s), {wall:.1f} s wall in all"
    )
    print("")
    print_table(headers, rows, args.markdown)
    print("")
    for o in outcomes:
        print(
            f"({letters[o.scenario]}) {o.scenario}, {o.variant} lengths: {o.servers} servers, "
            f"{o.duration_s:g} s, {o.requests:,} requests per policy, {o.wall_s:.1f} s wall"
        )
        for note in o.notes:
            print(f"    {note}")
    print("")
    print(
        "SLO met: requests meeting every target of their class; × oracle, × static, × best HPA: "
        "cost relative to those policies'; * the best of a sweep (the cheapest meeting 99%, else "
        "the highest SLO met); rollouts: changes of accelerator or batch (every pod replaced)."
    )


if __name__ == "__main__":
    main()
