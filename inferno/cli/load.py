"""``inferno load URL --model NAME=RPS ...``: open-loop load against a Triton server."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from ._table import render

if TYPE_CHECKING:
    from ..loadgen import LoadRun, ModelLoad, ModelSummary, Progress
    from ..triton import TritonClient

__all__ = ["add_parser", "format_summary", "parse_header", "parse_model", "parse_shape", "run"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "load",
        help="send open-loop load (Poisson or a trace) to models on a Triton server",
        description=(
            "Send requests at scheduled times whatever the server answers (open loop), then "
            "print per model the achieved rate, errors and latency percentiles. Exit status 1 "
            "when any request failed or was dropped."
        ),
    )
    p.add_argument(
        "url", help="Triton endpoint: host:port or http(s)://host:port (HTTP), grpc://host:port"
    )
    p.add_argument(
        "--model",
        "-m",
        action="append",
        required=True,
        metavar="NAME[=RPS]",
        help="a model and its Poisson rate in requests/s (repeat for several models); "
        "without a rate, its trace comes from --trace",
    )
    p.add_argument("--duration", "-d", type=float, default=30.0, help="seconds (default 30)")
    p.add_argument(
        "--trace",
        default=None,
        metavar="FILE",
        help="YAML/JSON {traces: {<model>|default: <trace>}} with the trace kinds of a "
        "simulate scenario (poisson, steps, diurnal, bursts, replay; rates in req/min; "
        "relative rates are multiples of the model's RPS)",
    )
    p.add_argument(
        "--batch", type=int, default=1, help="items per request (the batch dimension; default 1)"
    )
    p.add_argument(
        "--shape",
        action="append",
        default=[],
        metavar="INPUT=D1,D2",
        help="sizes for an input's variable (-1) dimensions, without the batch dimension",
    )
    p.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an HTTP header / gRPC metadata sent with every call",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed of the schedule")
    p.add_argument(
        "--max-inflight",
        type=int,
        default=4096,
        help="requests unanswered before new ones are dropped (counted) instead of sent",
    )
    p.add_argument(
        "--drain", type=float, default=30.0, help="seconds to wait for answers after the run"
    )
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the summary as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def parse_model(text: str) -> tuple[str, float | None]:
    """``NAME`` or ``NAME=RPS``."""
    name, sep, rate = text.partition("=")
    name = name.strip()
    if not name:
        raise InputError(f"--model {text!r}: no model name")
    if not sep:
        return name, None
    try:
        rps = float(rate)
    except ValueError:
        raise InputError(f"--model {text!r}: the rate {rate!r} is not a number") from None
    if not rps >= 0 or rps == float("inf"):
        raise InputError(f"--model {text!r}: the rate must be a finite number ≥ 0 requests/s")
    return name, rps


def parse_shape(text: str) -> tuple[str, tuple[int, ...]]:
    """``INPUT=D1,D2``."""
    name, sep, dims = text.partition("=")
    try:
        shape = tuple(int(d) for d in dims.split(",")) if dims.strip() else ()
    except ValueError:
        shape = (-1,)
    if not sep or not name.strip() or any(d < 1 for d in shape):
        raise InputError(f"--shape {text!r}: expected INPUT=D1,D2 with dimensions ≥ 1")
    return name.strip(), shape


def parse_header(text: str) -> tuple[str, str]:
    """``NAME=VALUE``."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise InputError(f"--header {text!r}: expected NAME=VALUE")
    return name.strip().lower(), value.strip()


def build_loads(args: argparse.Namespace) -> list[ModelLoad]:
    from ..loadgen import ModelLoad
    from ..simulate.scenario import load_traces

    if not args.duration > 0:
        raise InputError(f"--duration must be > 0 s, got {args.duration}")
    if args.batch < 1:
        raise InputError(f"--batch must be ≥ 1, got {args.batch}")
    models = [parse_model(m) for m in args.model]
    names = [m for m, _ in models]
    if len(set(names)) != len(names):
        raise InputError(f"--model: a model is given twice ({', '.join(names)})")
    shapes = dict(parse_shape(s) for s in args.shape)
    loads = []
    for name, rps in models:
        if args.trace:
            trace = load_traces(args.trace, [name], base=(rps or 0.0) * 60.0)[name]
            loads.append(ModelLoad(name, trace, args.batch, shapes))
        elif rps is None:
            raise InputError(f"--model {name}: give a rate (NAME=RPS) or a --trace file")
        else:
            loads.append(ModelLoad.poisson(name, rps, args.batch, shapes))
    return loads


class Bar:
    """tqdm over the scheduled requests, with ok/error/in-flight counters."""

    def __init__(self, total: int, enabled: bool) -> None:
        from tqdm import tqdm

        self._bar = tqdm(
            total=total, unit="req", disable=not enabled, file=sys.stderr, dynamic_ncols=True
        )

    def __call__(self, p: Progress) -> None:
        self._bar.update(p.sent - self._bar.n)
        self._bar.set_postfix(ok=p.ok, errors=p.errors, inflight=p.inflight, refresh=False)

    def close(self) -> None:
        self._bar.close()


async def _run_load(
    client: TritonClient, loads: list[ModelLoad], args: argparse.Namespace
) -> LoadRun:
    from ..loadgen import drive, schedule
    from ..triton import make_inputs

    inputs = []
    for i, load in enumerate(loads):
        info = await client.model_info(load.model)
        inputs.append(make_inputs(info, batch=load.batch, shapes=load.shapes, seed=args.seed + i))
    plan = schedule(loads, args.duration, args.seed)
    bar = Bar(len(plan), enabled=not args.quiet)
    try:
        return await drive(
            client.infer,
            loads,
            plan,
            inputs,
            duration=args.duration,
            max_inflight=args.max_inflight,
            drain=args.drain,
            progress=bar,
        )
    finally:
        bar.close()


async def load_async(args: argparse.Namespace) -> tuple[LoadRun, list[ModelSummary]]:
    from ..loadgen import summarize
    from ..triton import TritonClient

    loads = build_loads(args)
    headers = dict(parse_header(h) for h in args.header)
    async with TritonClient(args.url, headers=headers, timeout=args.timeout) as client:
        result = await _run_load(client, loads, args)
    return result, summarize(result)


def format_summary(summaries: list[ModelSummary], run: LoadRun) -> str:
    headers = [
        "model",
        "target/s",
        "sent",
        "ok",
        "errors",
        "achieved/s",
        "mean ms",
        "p50",
        "p90",
        "p95",
        "p99",
        "max lag ms",
    ]
    rows: list[list[Any]] = [
        [
            s.model,
            s.target_rps,
            s.sent,
            s.ok,
            s.errors,
            s.achieved_rps,
            s.mean_ms,
            *(s.percentiles_ms[q] for q in (50.0, 90.0, 95.0, 99.0)),
            s.max_lag_ms,
        ]
        for s in summaries
    ]
    out = [
        f"{run.duration:g} s of open-loop load ({run.wall:.1f} s with the drain)",
        "",
        render(headers, rows, right=set(range(1, len(headers)))),
    ]
    for s in summaries:
        if s.model == "*":
            continue
        for kind, count in s.error_kinds.items():
            out.append(f"{s.model}: {count} × {kind}")
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    result, summaries = asyncio.run(load_async(args))
    print(format_summary(summaries, result))
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "url": args.url,
                    "duration": args.duration,
                    "wall": result.wall,
                    "models": [s.to_json() for s in summaries],
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
    return 1 if any(s.errors for s in summaries) else 0
