"""``inferno load URL --model NAME=RPS ...``: open-loop load against a Triton server;
``inferno load URL --model NAME --users N [--think S]``: a closed loop of N users per model.
Prints per model a table, siege's summary block (``--report``), or both."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from ._load_report import format_siege, format_summary, format_users

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from ..loadgen import (
        LoadRun,
        ModelLoad,
        ModelSummary,
        Progress,
        ThinkTime,
        TransactionStats,
        UserRun,
        UserSummary,
    )
    from ..triton import TritonClient

__all__ = [
    "add_parser",
    "parse_header",
    "parse_model",
    "parse_shape",
    "parse_think",
    "run",
]

#: users in all (per model × models) a closed loop may run: one asyncio task each
MAX_USERS = 10_000
DEFAULT_DURATION = 30.0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "load",
        help="send open-loop (Poisson or a trace) or closed-loop (users) load to Triton models",
        description=(
            "Send requests at scheduled times whatever the server answers (open loop), or, with "
            "--users, from N users per model that each send, wait for the answer and think "
            "(closed loop); then print per model the achieved rate, errors and latency "
            "percentiles, and/or siege's summary (--report). Exit status 1 when any request "
            "failed or was dropped."
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
        "without a rate, its trace comes from --trace; with --users, the name only",
    )
    p.add_argument(
        "--duration",
        "-d",
        type=float,
        default=None,
        help="seconds (default 30; with --reps and no --duration, until every user is done)",
    )
    p.add_argument(
        "--users",
        "-u",
        type=int,
        default=None,
        metavar="N",
        help="closed loop: N concurrent users per model, each sending a request, waiting for "
        f"its answer, then thinking (--think) before the next (Locust's users, siege's -c; "
        f"at most {MAX_USERS} in all)",
    )
    p.add_argument(
        "--think",
        default=None,
        metavar="S|exp:MEAN|uniform:A,B",
        help="closed loop: a user's think time after each answer, in seconds: fixed S "
        "(Locust's constant), exponential with mean MEAN, or uniform between A and B "
        "(Locust's between; siege's --delay=D is uniform:0,D); default 0",
    )
    p.add_argument(
        "--reps",
        "-r",
        type=int,
        default=None,
        metavar="N",
        help="closed loop: requests per user (siege's --reps); the run ends when every user "
        "has sent them or --duration passes, whichever comes first",
    )
    p.add_argument(
        "--report",
        choices=("table", "siege", "both"),
        default="table",
        help="what to print: the per-model table (default), siege's summary block per model "
        "(transactions, availability, response time, transaction rate, concurrency...), or "
        "both; --json always holds both",
    )
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
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="random seed of the schedule, the think times and the inputs",
    )
    p.add_argument(
        "--max-inflight",
        type=int,
        default=4096,
        help="open loop: requests unanswered before new ones are dropped (counted) instead of sent",
    )
    p.add_argument(
        "--drain",
        type=float,
        default=30.0,
        help="seconds to wait for answers after the run (then they count as timeouts)",
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


def parse_think(text: str) -> ThinkTime:
    """``S``, ``exp:MEAN`` or ``uniform:A,B`` seconds."""
    from ..loadgen import ThinkTime

    try:
        return ThinkTime.parse(text)
    except ValueError as err:
        raise InputError(f"--think: {err}") from None


def _check_common(args: argparse.Namespace) -> list[tuple[str, float | None]]:
    """The checks of both loops; the models given."""
    if args.duration is not None and not (args.duration > 0 and math.isfinite(args.duration)):
        raise InputError(f"--duration must be a finite number > 0 s, got {args.duration}")
    if args.batch < 1:
        raise InputError(f"--batch must be ≥ 1, got {args.batch}")
    if not (args.drain >= 0 and math.isfinite(args.drain)):
        raise InputError(f"--drain must be a finite number ≥ 0 s, got {args.drain}")
    models = [parse_model(m) for m in args.model]
    names = [m for m, _ in models]
    if len(set(names)) != len(names):
        raise InputError(f"--model: a model is given twice ({', '.join(names)})")
    return models


def check_closed(args: argparse.Namespace) -> tuple[list[str], ThinkTime]:
    """The closed loop's arguments: the models and the think time."""
    from ..loadgen import ThinkTime

    models = _check_common(args)
    if args.users < 1:
        raise InputError(f"--users must be ≥ 1, got {args.users}")
    if args.users * len(models) > MAX_USERS:
        raise InputError(
            f"--users: {args.users} per model × {len(models)} model(s) is more than the limit "
            f"of {MAX_USERS} users in all"
        )
    if args.reps is not None and args.reps < 1:
        raise InputError(f"--reps must be ≥ 1, got {args.reps}")
    if args.trace:
        raise InputError("--trace is for the open loop; --users runs a closed loop")
    for name, rps in models:
        if rps is not None:
            raise InputError(
                f"--model {name}={rps:g}: with --users (closed loop) give the model name only; "
                "a rate is for the open loop"
            )
    think = parse_think(args.think) if args.think is not None else ThinkTime()
    return [name for name, _ in models], think


def build_loads(args: argparse.Namespace) -> list[ModelLoad]:
    from ..loadgen import ModelLoad
    from ..simulate.scenario import load_traces

    for flag, value in (("--think", args.think), ("--reps", args.reps)):
        if value is not None:
            raise InputError(f"{flag} is for the closed loop: add --users N")
    models = _check_common(args)
    if args.duration is None:
        args.duration = DEFAULT_DURATION
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
    """tqdm over the requests, with ok/error/in-flight counters (no total: a timed closed loop)."""

    def __init__(self, total: int, enabled: bool) -> None:
        from tqdm import tqdm

        self._bar = tqdm(
            total=total or None,
            unit="req",
            disable=not enabled,
            file=sys.stderr,
            dynamic_ncols=True,
        )

    def __call__(self, p: Progress) -> None:
        self._bar.update(p.sent - self._bar.n)
        self._bar.set_postfix(ok=p.ok, errors=p.errors, inflight=p.inflight, refresh=False)

    def close(self) -> None:
        self._bar.close()


def payload_bytes(inputs: dict[str, NDArray[Any]]) -> float | None:
    """A request's input tensor bytes (None with a BYTES input: its wire size is not nbytes)."""
    if any(a.dtype == object for a in inputs.values()):
        return None
    return float(sum(a.nbytes for a in inputs.values()))


async def _inputs(
    client: TritonClient, requests: list[tuple[str, int, dict[str, tuple[int, ...]]]], seed: int
) -> list[dict[str, NDArray[Any]]]:
    """One request body per (model, items per request, variable dimensions)."""
    from ..triton import make_inputs

    inputs = []
    for i, (model, batch, shapes) in enumerate(requests):
        info = await client.model_info(model)
        inputs.append(make_inputs(info, batch=batch, shapes=shapes, seed=seed + i))
    return inputs


async def _run_load(
    client: TritonClient, loads: list[ModelLoad], args: argparse.Namespace
) -> tuple[LoadRun, list[dict[str, NDArray[Any]]]]:
    from ..loadgen import drive, schedule

    requests = [(load.model, load.batch, load.shapes) for load in loads]
    inputs = await _inputs(client, requests, args.seed)
    plan = schedule(loads, args.duration, args.seed)
    bar = Bar(len(plan), enabled=not args.quiet)
    try:
        result = await drive(
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
    return result, inputs


async def load_async(
    args: argparse.Namespace,
) -> tuple[LoadRun, list[ModelSummary], list[TransactionStats]]:
    """The open loop."""
    from ..loadgen import open_transactions, summarize
    from ..triton import TritonClient

    loads = build_loads(args)
    headers = dict(parse_header(h) for h in args.header)
    async with TritonClient(args.url, headers=headers, timeout=args.timeout) as client:
        result, inputs = await _run_load(client, loads, args)
    sizes = [payload_bytes(body) for body in inputs]
    return result, summarize(result), open_transactions(result, sizes)


async def users_async(args: argparse.Namespace) -> tuple[UserRun, list[UserSummary]]:
    """The closed loop."""
    from ..loadgen import run_users, summarize_users
    from ..triton import TritonClient

    models, think = check_closed(args)
    shapes = dict(parse_shape(s) for s in args.shape)
    if args.duration is None and args.reps is None:
        args.duration = DEFAULT_DURATION
    headers = dict(parse_header(h) for h in args.header)
    async with TritonClient(args.url, headers=headers, timeout=args.timeout) as client:
        inputs = await _inputs(client, [(m, args.batch, shapes) for m in models], args.seed)
        total = len(models) * args.users * args.reps if args.reps is not None else 0
        bar = Bar(total, enabled=not args.quiet)
        try:
            result = await run_users(
                client.infer,
                models,
                inputs,
                users=args.users,
                think=think,
                duration=args.duration,
                reps=args.reps,
                seed=args.seed,
                drain=args.drain,
                progress=bar,
            )
        finally:
            bar.close()
    return result, summarize_users(result, [payload_bytes(body) for body in inputs])


def _print(report: str, table: str, siege: str) -> None:
    if report in ("table", "both"):
        print(table)
    if report == "both":
        print()
    if report in ("siege", "both"):
        print(siege)


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _write_json(path: str, doc: dict[str, Any]) -> None:
    Path(path).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")


def run(args: argparse.Namespace) -> int:
    if args.users is not None:
        return run_closed(args)
    result, summaries, stats = asyncio.run(load_async(args))
    siege = format_siege([(s.model, t) for s, t in zip(summaries, stats, strict=True)])
    _print(args.report, format_summary(summaries, result), siege)
    if args.json:
        _write_json(
            args.json,
            {
                "url": args.url,
                "mode": "open",
                "duration": args.duration,
                "wall": result.wall,
                "models": [
                    {**s.to_json(), "siege": t.to_json()}
                    for s, t in zip(summaries, stats, strict=True)
                ],
            },
        )
    return 1 if any(s.errors for s in summaries) else 0


def run_closed(args: argparse.Namespace) -> int:
    result, summaries = asyncio.run(users_async(args))
    siege = format_siege([(s.model, s.stats) for s in summaries])
    _print(args.report, format_users(summaries, result), siege)
    if args.json:
        think = result.think
        _write_json(
            args.json,
            {
                "url": args.url,
                "mode": "closed",
                "users": result.users,
                "think": {
                    "kind": think.kind,
                    "low": think.low,
                    "high": think.high,
                    "mean": think.mean,
                    "measuredMean": _finite(result.think_mean_s),
                },
                "duration": result.duration,
                "reps": result.reps,
                "wall": result.wall,
                "models": [s.to_json() for s in summaries],
            },
        )
    return 1 if any(s.errors for s in summaries) else 0
