"""``inferno recipe DIR SERVER``: the serving container's CPU/memory requests and limits and an
HPA for one server, from its profile's measured resources at the optimizer's decision."""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from ._decision import add_decision_arguments, decided

if TYPE_CHECKING:
    from ..solver.recipe import Recipe
    from ..solver.result import Allocation

__all__ = ["add_parser", "parse_cpu", "parse_memory_mib", "run"]

_MEMORY = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(Ki|Mi|Gi|Ti|k|K|M|G|T)?\s*$")
_MIB_PER = {
    None: 1.0 / 2**20,  # bytes
    "Ki": 1.0 / 1024,
    "Mi": 1.0,
    "Gi": 1024.0,
    "Ti": 1024.0**2,
    "k": 1e3 / 2**20,
    "K": 1e3 / 2**20,
    "M": 1e6 / 2**20,
    "G": 1e9 / 2**20,
    "T": 1e12 / 2**20,
}


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "recipe",
        help="print a server's container requests/limits (Deployment patch) and an HPA",
        description=(
            "Decide the system in DIR (as optimize does), then, from the CPU and memory the "
            "server's profile measured (model-data.json's resources, written by `inferno "
            "profile --pid`) interpolated at the rate each replica receives: print a "
            "strategic-merge patch of the Deployment setting the container's requests and "
            "limits, and an autoscaling/v2 HPA with bounds from the decision."
        ),
    )
    p.add_argument("directory", help="directory with Inferno's *-data.json files")
    p.add_argument("server", help="the server (its name in server-data.json)")
    p.add_argument("--solver", choices=["greedy", "milp"], default=None, help="as for optimize")
    add_decision_arguments(p)
    p.add_argument(
        "--deployment", help="the Deployment's name (default: the server's name, as the samples)"
    )
    p.add_argument("--namespace", "-n", help="the objects' namespace (default: none written)")
    p.add_argument("--container", default="triton", help="the serving container (default triton)")
    p.add_argument(
        "--instances",
        type=int,
        default=None,
        help="model instances per replica whose resources apply (default: the decision's, else 1)",
    )
    p.add_argument("--cpu-headroom", type=float, default=0.5, help="CPU limit above p95 at λ*")
    p.add_argument(
        "--memory-headroom", type=float, default=0.25, help="memory limit above the peak"
    )
    p.add_argument(
        "--hpa-headroom",
        type=float,
        default=0.25,
        help="HPA maxReplicas above the decision (default 0.25, INFERNO_HPA_HEADROOM's default)",
    )
    p.add_argument("--node-cpu", help="a node's allocatable CPU (e.g. 8 or 7500m)")
    p.add_argument("--node-memory", help="a node's allocatable memory (e.g. 64Gi)")
    p.add_argument("--no-hpa", action="store_true", help="print the Deployment patch only")
    p.add_argument("--json", action="store_true", help="print the recipe and objects as JSON")
    p.set_defaults(func=run)


def parse_cpu(text: str, flag: str = "--node-cpu") -> float:
    """Cores from a Kubernetes CPU quantity (``8``, ``7.5``, ``7500m``)."""
    raw = text.strip()
    try:
        cores = float(raw[:-1]) / 1000.0 if raw.endswith("m") else float(raw)
    except ValueError:
        raise InputError(f"{flag} {text!r}: expected a CPU quantity such as 8 or 7500m") from None
    if not (math.isfinite(cores) and cores > 0):
        raise InputError(f"{flag} {text!r}: expected a positive CPU quantity")
    return cores


def parse_memory_mib(text: str, flag: str = "--node-memory") -> float:
    """MiB from a Kubernetes memory quantity (``64Gi``, ``512Mi``, ``1G``, bytes)."""
    match = _MEMORY.match(text)
    if match is None:
        raise InputError(f"{flag} {text!r}: expected a memory quantity such as 64Gi or 512Mi")
    mib = float(match.group(1)) * _MIB_PER[match.group(2)]
    if not (math.isfinite(mib) and mib > 0):
        raise InputError(f"{flag} {text!r}: expected a positive memory quantity")
    return mib


def _decided_instances(alloc: Allocation) -> int:
    """The decision's model instances per replica when the solver decides them, else 1."""
    value = getattr(alloc, "instances", None)
    return value if isinstance(value, int) and value >= 1 else 1


def _allocation(args: argparse.Namespace) -> tuple[Any, Allocation]:
    from ..data import load_system
    from ..solver import build_candidates, solve_table

    system = decided(args, load_system(args.directory))
    servers = {s.name: s for s in system.servers}
    if args.server not in servers:
        raise InputError(
            f"no server named {args.server!r}; known: {', '.join(sorted(servers))}",
            source=args.directory,
        )
    try:
        solution = solve_table(build_candidates(system), args.solver)
    except InputError as err:  # a model limit (inferno.model): the data is the system's
        err.source = err.source or args.directory
        raise
    alloc = solution.allocations.get(args.server)
    if alloc is None:
        why = solution.unallocated.get(args.server)
        reason = why.reason if why is not None else "no decision"
        raise InputError(f"server {args.server!r} is not allocated ({reason}): no recipe")
    return servers[args.server], alloc


def _recipe(args: argparse.Namespace) -> tuple[Recipe, Allocation, str]:
    from ..data._json import read_json
    from ..data.serving_rows import model_row, resource_levels
    from ..data.system_files import MODEL_FILE
    from ..model.profiles import MAX_INSTANCES
    from ..solver.recipe import RecipeOptions, recipe

    if args.instances is not None and not 1 <= args.instances <= MAX_INSTANCES:
        raise InputError(
            f"--instances must be from 1 to {MAX_INSTANCES} (Triton's instance_group count, "
            f"Inferno's limit), got {args.instances}"
        )
    options = RecipeOptions(
        cpu_headroom=args.cpu_headroom,
        memory_headroom=args.memory_headroom,
        hpa_headroom=args.hpa_headroom,
        node_cpu=parse_cpu(args.node_cpu) if args.node_cpu else None,
        node_memory_mib=parse_memory_mib(args.node_memory) if args.node_memory else None,
    )
    server, alloc = _allocation(args)
    path = Path(args.directory) / MODEL_FILE
    row = model_row(read_json(path, str(path)), server.model, alloc.accelerator)
    levels = resource_levels(row)
    if not levels:
        raise InputError(
            f"model {server.model!r} on {alloc.accelerator!r} has no resources data: run "
            "`inferno profile URL -m MODEL --pid PID --merge model-data.json` on the server",
            source=str(path),
        )
    instances = _decided_instances(alloc) if args.instances is None else args.instances
    replicas = max(alloc.replicas, 1)
    r = recipe(
        levels,
        rate=alloc.demand / replicas / 60.0,
        max_rate=alloc.max_rate_per_replica / 60.0,
        replicas=alloc.replicas,
        instances=instances,
        options=options,
    )
    return r, alloc, server.model


def _to_json(r: Recipe) -> dict[str, Any]:
    return {
        "requests": {"cpuMillicores": r.cpu_request_m, "memoryMiB": r.memory_request_mib},
        "limits": {"cpuMillicores": r.cpu_limit_m, "memoryMiB": r.memory_limit_mib},
        "hpa": {
            "minReplicas": r.hpa_min,
            "maxReplicas": r.hpa_max,
            "cpuUtilization": r.hpa_cpu_utilization,
        },
        "ratePerReplica": r.rate,
        "maxRatePerReplica": r.max_rate,
        "instances": r.instances,
        "use": r.use,
        "notes": list(r.notes),
    }


def run(args: argparse.Namespace) -> int:
    import yaml

    from ..cluster.recipe import deployment_patch, hpa

    r, alloc, model = _recipe(args)
    name = args.deployment or args.server
    objects = [deployment_patch(r, name, container=args.container, namespace=args.namespace)]
    if not args.no_hpa:
        objects.append(hpa(r, name, namespace=args.namespace))
    if args.json:
        out = {"server": args.server, "recipe": _to_json(r), "objects": objects}
        print(json.dumps(out, indent=2))
        return 0
    use = r.use
    header = [
        f"server {args.server} (model {model}): {alloc.replicas} × {alloc.accelerator}, "
        f"{r.instances} instance(s) each, {r.rate:.2f} req/s per replica (λ* {r.max_rate:.2f})",
        f"measured at that rate: CPU p95 {use['cpuP95']:.3f} cores, memory peak "
        f"{use['memoryPeakMiB']:.0f} MiB; at λ*: CPU mean {use['cpuMeanAtMaxRate']:.3f}, "
        f"p95 {use['cpuP95AtMaxRate']:.3f} cores, memory peak "
        f"{use['memoryPeakUpToMaxRateMiB']:.0f} MiB",
        "apply: kubectl patch deployment NAME --patch-file PATCH (the first document); "
        "kubectl apply -f HPA (the second)",
        *(f"note: {n}" for n in r.notes),
    ]
    print("\n".join(f"# {line}" for line in header))
    print(yaml.safe_dump_all(objects, sort_keys=False, explicit_start=True), end="")
    return 0
