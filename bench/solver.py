"""Solver benchmark: synthetic systems of 27 to 10,000 servers over the large sample's
accelerators and models. Prints a table; ``--markdown`` prints it for bench/README.md.

Systems: servers cycle through the sample's classes (Premium, Bronze, Free) and 9 models; arrival
rates uniform in 60–600 req/min; tokens 128 in / 1024 out, each ±50% (uniform), seeded. The
sample's profiles are G0, whose token count is the output length. Capacity: unlimited, or ~70% of
the accelerator units the unlimited solution uses, per type ("limited"). Queue: K = 11N (a queue
of 10N, the published samples' semantics for the later kinds) or K = N (no queue beyond the batch).
``--model accurate`` sizes with the accurate model (docs/model.md, "Accurate mode").

``--profiles g2``: every G0 profile of the sample made G2 (``perfParms``) as
``bench/accurate_cost.py``'s ``g2`` system makes it (α, β₂ = 0.4β, γ₂ = 0.5β/384, the G0 row's
maxBatchSize and atTokens), and its classes (Premium, Bronze, Free: the sample's slo-itl and a mean
slo-ttft of 250 / 500 / 1000 ms, no slo-ttw); the servers and their loads are the same as with
G0. The directory the whole process reads then holds these profiles and classes as JSON rows.

Usage: python bench/solver.py [--sizes 27,270,2700,10000] [--milp-max 2700] [--repeat 3]
                              [--model inferno|accurate] [--profiles g0|g2]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import accurate_cost  # bench/, first on sys.path when run as a script
import numpy as np
from _tables import print_table  # bench/, first on sys.path when run as a script

from inferno.data import load_system
from inferno.model.profiles import G2Profile
from inferno.solver import solve
from inferno.system import Load, OptimizerSpec, PerformanceModel, Server, System

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "large"


def synthetic(
    base: System, n: int, seed: int, queue_factor: float, model: str = "inferno"
) -> System:
    performance = PerformanceModel(model)
    rng = np.random.default_rng(seed)
    classes = [c for c in ("Premium", "Bronze", "Free") if c in base.classes]
    models = sorted({p.model for p in base.profiles})
    servers = []
    for i in range(n):
        cls = classes[i % len(classes)]
        name = models[(i // len(classes)) % len(models)]
        rate = float(rng.uniform(60, 600))
        n_in = float(round(128 * rng.uniform(0.5, 1.5)))
        n_out = float(round(1024 * rng.uniform(0.5, 1.5)))
        servers.append(Server(f"s{i:05d}-{cls}-{name}", cls, name, Load(rate, n_in, n_out)))
    spec = OptimizerSpec(unlimited=True, queue_factor=queue_factor, model=performance)
    return replace(base, servers=tuple(servers), optimizer=spec)


def g2_base(base: System) -> System:
    """``base`` with its G0 profiles made G2 and its classes given TTFT targets, as
    ``bench/accurate_cost.py``'s ``synthetic(base, "G2", 0.0)`` does (its servers, which that
    function also changes, are replaced by :func:`synthetic`'s)."""
    return accurate_cost.synthetic(base, "G2", 0.0)


def limited(system: System) -> System:
    used = solve(system).units_used
    capacity = {k: int(math.floor(0.7 * v)) for k, v in used.items()}
    return replace(system, capacity=capacity, optimizer=replace(system.optimizer, unlimited=False))


def timed(system: System, solver: str | None, repeat: int) -> tuple[float, float, str]:
    """Best time of ``repeat`` solves, the cost, and the servers fully allocated / all."""
    best = math.inf
    cost = math.nan
    served = ""
    for _ in range(repeat):
        t0 = time.perf_counter()
        sol = solve(system, solver)  # type: ignore[arg-type]
        best = min(best, time.perf_counter() - t0)
        full = sum(a.replicas >= a.required_replicas for a in sol.allocations.values())
        cost, served = sol.total_cost, f"{full}/{len(system.servers)}"
    return best, cost, served


def peak_mib(system: System, solver: str | None) -> float:
    tracemalloc.start()
    solve(system, solver)  # type: ignore[arg-type]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def server_rows(system: System) -> list[dict[str, Any]]:
    """``system``'s servers as ``server-data.json`` rows (what a collector sends, too)."""
    return [
        {
            "name": s.name,
            "class": s.service_class,
            "model": s.model,
            "currentAlloc": {
                "load": {
                    "arrivalRate": s.load.arrival_rate,
                    "avgInTokens": s.load.in_tokens,
                    "avgOutTokens": s.load.out_tokens,
                }
            },
        }
        for s in system.servers
    ]


def g2_model_rows(system: System) -> list[dict[str, Any]]:
    """``system``'s profiles, all G2, as ``model-data.json`` rows (``perfParms``)."""
    rows = []
    for mp in system.profiles:
        p = mp.profile
        if not isinstance(p, G2Profile):
            raise TypeError(f"{mp.model} on {mp.accelerator}: a {p.kind} profile, not G2")
        row: dict[str, Any] = {
            "name": mp.model,
            "acc": mp.accelerator,
            "accCount": mp.acc_count,
            "perfParms": {"alpha": p.alpha, "beta": p.beta, "gamma": p.gamma},
            "maxBatchSize": p.max_batch_size,
        }
        if p.at_tokens is not None:
            row["atTokens"] = p.at_tokens
        rows.append(row)
    return rows


def class_rows(system: System) -> list[dict[str, Any]]:
    """``system``'s service classes as ``serviceclass-data.json`` rows (``modelTargets``) with
    the targets :func:`g2_base` gives: slo-itl and a mean slo-ttft (slo-ttw if any)."""
    rows = []
    for cls in system.classes.values():
        targets = []
        for t in cls.targets.values():
            if t.tps or t.latency or t.ttft_quantile is not None or t.ttw_quantile != 0.95:
                raise ValueError(f"class {cls.name}, model {t.model}: a target not written here")
            entry: dict[str, Any] = {"model": t.model}
            for key, value in (("slo-itl", t.itl), ("slo-ttft", t.ttft), ("slo-ttw", t.ttw)):
                if value:
                    entry[key] = value
            targets.append(entry)
        rows.append({"name": cls.name, "priority": cls.priority, "modelTargets": targets})
    return rows


def write_system(
    system: System, queue_factor: float, directory: Path, profiles: str = "g0"
) -> Path:
    """``system``'s servers as a system directory: the sample's accelerators, its optimizer
    data with ``queueFactor``, and a ``server-data.json`` of the synthetic servers. Profiles and
    classes: ``g0`` the sample's files as they are; ``g2`` ``system``'s (made by
    :func:`g2_base`), written as G2 ``perfParms`` rows and ``modelTargets`` classes."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(SAMPLE / "accelerator-data.json", directory / "accelerator-data.json")
    if profiles == "g0":
        for name in ("model-data.json", "serviceclass-data.json"):
            shutil.copy(SAMPLE / name, directory / name)
    elif profiles == "g2":
        models = {"models": g2_model_rows(system)}
        (directory / "model-data.json").write_text(json.dumps(models), encoding="utf-8")
        classes = {"serviceClasses": class_rows(system)}
        (directory / "serviceclass-data.json").write_text(json.dumps(classes), encoding="utf-8")
    else:
        raise ValueError(f"unknown profiles {profiles!r}; expected g0 or g2")
    optimizer = {
        "optimizer": {
            "unlimited": True,
            "queueFactor": queue_factor,
            "model": system.optimizer.model.value,
        }
    }
    (directory / "optimizer-data.json").write_text(json.dumps(optimizer), encoding="utf-8")
    rows = server_rows(system)
    (directory / "server-data.json").write_text(json.dumps({"servers": rows}), encoding="utf-8")
    return directory


def process_seconds(directory: Path, repeat: int, *, compiled: bool = True) -> float:
    """Best wall time of ``inferno optimize DIR --format json`` as a user runs it: process start,
    imports, reading and validating, solving, writing the JSON (to a pipe).

    ``compiled``: Python's compiled modules are cached, as after an install (in a private cache
    directory filled by one untimed run); this project's environment sets
    ``PYTHONDONTWRITEBYTECODE``, under which every run compiles inferno's modules again
    (about 0.05 s). ``--no-compiled`` measures that."""
    exe = Path(sys.executable).with_name("inferno")
    command = [str(exe), "optimize", str(directory), "--format", "json"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory() as cache:
        if compiled:
            env["PYTHONPYCACHEPREFIX"] = cache
            subprocess.run(command, check=True, capture_output=True, env=env)
        else:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        best = math.inf
        for _ in range(repeat):
            t0 = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True, env=env)
            best = min(best, time.perf_counter() - t0)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", default="27,270,2700,10000")
    ap.add_argument("--milp-max", type=int, default=10000, help="largest system the MILP is run on")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--model", choices=[m.value for m in PerformanceModel], default="inferno")
    ap.add_argument(
        "--profiles",
        choices=["g0", "g2"],
        default="g0",
        help="the sample's G0 profiles, or each made G2 as bench/accurate_cost.py does",
    )
    ap.add_argument(
        "--no-compiled",
        dest="compiled",
        action="store_false",
        help="whole process: compile inferno's modules in every run (no bytecode cache)",
    )
    args = ap.parse_args()
    base = load_system(SAMPLE)
    if args.profiles == "g2":
        base = g2_base(base)
    rows = []
    for qf, qname in ((10.0, "K=11N"), (0.0, "K=N")):
        for n in (int(x) for x in args.sizes.split(",")):
            sys_u = synthetic(base, n, args.seed, qf, args.model)
            t_u, c_u, _ = timed(sys_u, None, args.repeat)
            with tempfile.TemporaryDirectory() as tmp:
                p_u = process_seconds(
                    write_system(sys_u, qf, Path(tmp), args.profiles),
                    args.repeat,
                    compiled=args.compiled,
                )
            m_u = peak_mib(sys_u, None)
            sys_l = limited(sys_u)
            t_g, c_g, st_g = timed(sys_l, "greedy", args.repeat)
            m_g = peak_mib(sys_l, "greedy")
            if n <= args.milp_max:
                t_m, c_m, st_m = timed(sys_l, "milp", 1)
            else:
                t_m, c_m, st_m = math.nan, math.nan, "not run"
            rows.append((qname, n, t_u, p_u, m_u, c_u, t_g, m_g, c_g, st_g, t_m, c_m, st_m))
            print(f"# done {qname} n={n}", file=sys.stderr, flush=True)
    headers = [
        "queue",
        "servers",
        "unlimited s",
        "whole process s",
        "peak MiB",
        "cost",
        "greedy s",
        "peak MiB",
        "greedy cost",
        "greedy served",
        "MILP s",
        "MILP cost",
        "MILP served",
    ]
    fmt: list[Callable[[Any], str]] = [
        str,
        str,
        "{:.3f}".format,
        "{:.2f}".format,
        "{:.0f}".format,
        "{:,.0f}".format,
        "{:.3f}".format,
        "{:.0f}".format,
        "{:,.0f}".format,
        str,
        "{:.2f}".format,
        "{:,.0f}".format,
        str,
    ]
    cells = [
        [
            f(v) if not (isinstance(v, float) and math.isnan(v)) else "-"
            for f, v in zip(fmt, r, strict=True)
        ]
        for r in rows
    ]
    cli = process_seconds(SAMPLE, args.repeat, compiled=args.compiled)
    print_table(headers, cells, args.markdown)
    print(f"\nlarge sample end to end from the CLI (process start included): {cli:.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
