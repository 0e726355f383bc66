"""``inferno profile``: measure a Triton model and fit its batch-kind profile, or fit an LLM's
G2 profile from ITL/TTFT observations; print the fit and the model-data row."""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..data.documents import parse_json, read_text
from ..data.limits import MAX_BATCH_SIZE, MAX_TIME_MS, MAX_TOKENS
from ..errors import InputError
from ._table import render
from .load import parse_header

if TYPE_CHECKING:
    from ..profiling import LlmPoint, Measurement, ProfileFit

__all__ = ["add_parser", "read_observations", "run"]

LLM_COLUMNS = ("batch", "in_tokens", "out_tokens", "itl_ms", "ttft_ms")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "profile",
        help="measure a Triton model (batch kind) or fit LLM observations (G2); "
        "print a model-data row",
        description=(
            "With URL: send requests to MODEL (like perf_analyzer), read Triton's per-batch-size "
            "statistics and fit τ(b) = α + β·b. By default the requests are single items at "
            "rising concurrency, batched by Triton as live traffic is (the row's β then "
            "includes each request's overhead, reported beside the per-item cost of one b-item "
            "request). With --observations: fit an LLM server's G2 α, β, γ from a CSV of "
            f"ITL/TTFT measurements (columns {', '.join(LLM_COLUMNS)}; one of the last two may "
            "be empty)."
        ),
    )
    p.add_argument("url", nargs="?", help="Triton endpoint (host:port, http://, grpc://)")
    p.add_argument("--model", "-m", help="the Triton model to measure")
    p.add_argument("--observations", metavar="CSV", help="LLM ITL/TTFT observations to fit (G2)")
    p.add_argument("--name", help="the model's name in model-data.json (default: --model)")
    p.add_argument("--accelerator", "--acc", default="CPU", help="the row's acc (default CPU)")
    p.add_argument("--acc-count", type=int, default=1, help="accelerators per replica")
    p.add_argument(
        "--shape",
        choices=["single", "batch"],
        default="single",
        help="the requests' shape. single (default): one item per request at rising "
        "concurrency, Triton forms the batches, as from live traffic of single-item requests; "
        "batch: one request of b items per execution (--batch-sizes), for clients that send "
        "whole batches",
    )
    p.add_argument(
        "--batch-sizes",
        default="1,2,4,8,16",
        help="items per request with --shape batch, comma-separated (default 1,2,4,8,16)",
    )
    p.add_argument(
        "--concurrency",
        default="auto",
        help="comma-separated client concurrencies. auto (default): with --shape single "
        "1, 2, 4, … up to the model's max batch N, and 2N (every batch full); with --shape "
        "batch 1 (>1 lets Triton merge the b-item requests)",
    )
    p.add_argument("--requests", type=int, default=20, help="requests per worker and level")
    p.add_argument("--warmup", type=int, default=2, help="uncounted requests per level")
    p.add_argument(
        "--source",
        choices=["auto", "server", "client"],
        default="auto",
        help="timing from Triton's statistics (server) or the client; auto: server if allowed",
    )
    p.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="sent with every call, e.g. triton-access-token=... for locked statistics "
        "(over gRPC also sent as triton-grpc-protocol-...)",
    )
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    p.add_argument(
        "--instances-run",
        type=int,
        default=None,
        metavar="C",
        help="the server runs C model instances (instance_group count): measure up to (C + 1)·N "
        "concurrent requests and write the saturated throughput as instanceThroughput; merge "
        "runs at several C (--merge) to fit the contention factor κ(C)",
    )
    p.add_argument(
        "--pid",
        type=int,
        default=None,
        help="the server's process id on this machine: sample its CPU and memory (with its "
        "child processes) idle, then under single-item Poisson traffic at 25/50/75/90%% of the "
        "highest rate the levels served, and write a resources block",
    )
    p.add_argument(
        "--idle-seconds",
        type=float,
        default=2.0,
        metavar="S",
        help="with --pid: seconds of sampling with no load before the levels (default 2)",
    )
    p.add_argument(
        "--sample-interval",
        type=float,
        default=0.2,
        metavar="S",
        help="seconds between resource samples with --pid (default 0.2)",
    )
    p.add_argument(
        "--level-samples",
        type=int,
        default=40,
        metavar="K",
        help="with --pid: each Poisson traffic level (at 25/50/75/90%% of the highest rate "
        "served) lasts K sample intervals (default 40: the CPU p95 is then the 3rd largest, "
        "below the 70th percentile once in 10,000 profiles)",
    )
    p.add_argument("--max-batch", type=int, default=None, help="maxBatchSize of the row")
    p.add_argument("--at-tokens", type=float, default=None, help="atTokens of a G2 row")
    p.add_argument("--out", metavar="FILE", help="write the row (JSON) to FILE")
    p.add_argument(
        "--merge",
        metavar="MODEL_DATA",
        help="put the row into this model-data.json (replacing the same model and acc)",
    )
    p.add_argument("--json", action="store_true", help="print the whole result as JSON")
    p.set_defaults(func=run)


def _ints(text: str, flag: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise InputError(f"{flag} {text!r}: expected comma-separated whole numbers") from None
    if not values or any(v < 1 for v in values):
        raise InputError(f"{flag} {text!r}: expected whole numbers ≥ 1")
    return values


#: the largest value of each observation column: the data's own limits (a batch, tokens per
#: request, a time in ms), so that the fit's products stay finite
_MOST = {
    "batch": MAX_BATCH_SIZE,
    "in_tokens": MAX_TOKENS,
    "out_tokens": MAX_TOKENS,
    "itl_ms": MAX_TIME_MS,
    "ttft_ms": MAX_TIME_MS,
    "weight": 1e9,
}


def read_observations(path: str) -> list[LlmPoint]:
    """LLM observations from a CSV with a header naming :data:`LLM_COLUMNS` (``weight``
    optional). Errors name the file, line and column."""
    from ..profiling import LlmPoint

    text = read_text(Path(path), path)
    reader = csv.DictReader(text.splitlines())
    header = reader.fieldnames or []
    missing = [c for c in LLM_COLUMNS if c not in header]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)} (header: {header})", source=path)
    points = []
    for line, row in enumerate(reader, start=2):

        def number(
            col: str, optional: bool = False, row: dict[str, str] = row, line: int = line
        ) -> float | None:
            most = _MOST[col]
            raw = (row.get(col) or "").strip()
            if not raw and optional:
                return None
            try:
                value = float(raw)
            except ValueError:
                raise InputError(
                    f"line {line}, column {col}: expected a number, got {raw!r}", source=path
                ) from None
            if not math.isfinite(value) or not 0 <= value <= most:
                raise InputError(
                    f"line {line}, column {col}: expected a number from 0 to {most:g}, got {raw!r}",
                    source=path,
                )
            return value

        batch = number("batch")
        assert batch is not None
        if batch < 1:
            raise InputError(f"line {line}, column batch: must be ≥ 1", source=path)
        itl, ttft = number("itl_ms", True), number("ttft_ms", True)
        if itl is None and ttft is None:
            raise InputError(f"line {line}: neither itl_ms nor ttft_ms", source=path)
        points.append(
            LlmPoint(
                batch,
                number("in_tokens") or 0.0,
                number("out_tokens") or 0.0,
                itl,
                ttft,
                (number("weight", True) or 1.0) if "weight" in header else 1.0,
            )
        )
    if not points:
        raise InputError("no observations", source=path)
    return points


def _fit_lines(fit: ProfileFit) -> list[str]:
    f = fit.fit
    rows = [
        [name, value, err, (100.0 * err / abs(value)) if value else None]
        for name, value, err in zip(f.names, f.params, f.stderr, strict=True)
    ]
    out = [
        render(["parameter", "value (ms)", "std. error", "rel. %"], rows, right={1, 2, 3}),
        f"R² {f.r2:.5f}   RMSE {f.rmse:.3g} ms   {f.n} points",
    ]
    if not fit.ok:
        out.append("WARNING: unusable fit: " + "; ".join(fit.problems))
    return out


def _level_lines(m: Measurement) -> list[str]:
    headers = ["batch", "concurrency", "requests", "client mean ms", "client p95 ms", "items/s"]
    headers.append("executions (size×count: mean ms)")
    rows = [
        [
            lv.batch,
            lv.concurrency,
            lv.requests,
            lv.client_mean_ms,
            lv.client_p95_ms,
            lv.throughput,
            ", ".join(f"{b}×{c}: {ms:.2f}" for b, (c, ms) in lv.executions.items()) or "-",
        ]
        for lv in (*m.levels, *m.item_levels)
    ]
    return [render(headers, rows, right={0, 1, 2, 3, 4, 5})]


async def _measure(args: argparse.Namespace) -> Measurement:
    from ..profiling import MeasureOptions, ProcessSampler, auto_concurrency, measure
    from ..triton import TritonClient

    auto = args.concurrency.strip().lower() == "auto"
    options = MeasureOptions(
        shape=args.shape,
        batch_sizes=_ints(args.batch_sizes, "--batch-sizes"),
        concurrency=None if auto else _ints(args.concurrency, "--concurrency"),
        requests=args.requests,
        warmup=args.warmup,
        source=args.source,
        instances=args.instances_run or 1,
        idle_seconds=args.idle_seconds,
        traffic_seconds=args.level_samples * args.sample_interval,
    )
    sampler = None if args.pid is None else ProcessSampler(args.pid, args.sample_interval)
    headers = dict(parse_header(h) for h in args.header)
    async with TritonClient(args.url, headers=headers, timeout=args.timeout) as probe:
        info = await probe.model_info(args.model)
    levels = options.concurrency or auto_concurrency(info.max_batch_size, options.instances)
    # one connection per worker (the single shape's top level has 2N)
    async with TritonClient(
        args.url, headers=headers, timeout=args.timeout, connections=max(1024, *levels)
    ) as client:
        return await measure(client, args.model, options, sampler)


def _overhead_lines(
    m: Measurement, fit: ProfileFit, result: dict[str, Any], max_batch: int
) -> list[str]:
    """The single shape's per-request overhead and the capacities it makes the difference of."""
    from ..profiling import FitError, capacity, fit_batch, request_overhead

    alpha, beta = fit.fit.value("alpha"), fit.fit.value("beta")
    cap = capacity(alpha, beta, max_batch)
    result["capacity"] = {"rps": _finite(cap), "maxBatch": max_batch}
    unit = "req/s" if m.shape == "single" else "items/s"
    lines = [
        f"capacity: {cap:.1f} {unit} per instance (N / τ(N) at N = {max_batch}: full batches "
        "back to back)"
    ]
    if m.shape != "single" or not m.item_points:
        return lines
    try:
        items = fit_batch(m.item_points)
    except FitError as exc:
        return [*lines, f"per-request overhead not measured: {exc}"]
    over = request_overhead(fit, items)
    item_cap = capacity(items.fit.value("alpha"), items.fit.value("beta"), max_batch)
    result["overhead"] = over.to_json()
    result["capacity"]["itemsRps"] = _finite(item_cap)
    result["itemPoints"] = [
        {"batch": p.batch, "ms": p.ms, "executions": p.weight} for p in m.item_points
    ]
    err = f" ± {over.stderr:.2f}" if math.isfinite(over.stderr) else ""
    lines += [
        f"per-request overhead: {over.ms:.3f}{err} ms per request ({100 * over.relative:+.1f}% "
        f"of the per-item β): β {beta:.3f} ms per single-item request batched by Triton, "
        f"{items.fit.value('beta'):.3f} ms per item in one request of "
        f"{', '.join(f'{p.batch:g}' for p in m.item_points)} items",
        "a profile of b-item requests (--shape batch) would put the capacity at "
        f"{item_cap:.1f} req/s ({100 * (item_cap / cap - 1):+.1f}%) for single-item traffic",
    ]
    return lines


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _check_serving_args(args: argparse.Namespace) -> None:
    from ..model.profiles import MAX_INSTANCES

    c = args.instances_run
    if c is not None:
        if not 1 <= c <= MAX_INSTANCES:
            raise InputError(f"--instances-run must be from 1 to {MAX_INSTANCES}, got {c}")
        if c > 1 and args.shape != "single":
            raise InputError(
                "--instances-run above 1 needs --shape single (concurrent requests keep every "
                "instance busy)"
            )
    if not (math.isfinite(args.idle_seconds) and 0 <= args.idle_seconds <= 600):
        raise InputError(f"--idle-seconds must be between 0 and 600, got {args.idle_seconds}")
    if not 1 <= args.level_samples <= 10_000:
        raise InputError(f"--level-samples must be from 1 to 10000, got {args.level_samples}")
    if (c is not None or args.pid is not None) and args.observations:
        raise InputError("--instances-run and --pid measure a Triton URL, not --observations")


def _gpu_share_lines(m: Measurement, result: dict[str, Any]) -> list[str]:
    """The row's ``gpuShare`` from Triton's compute phases, or why the row has none."""
    split = m.compute
    share = split.share if split is not None else None
    if split is not None and share is not None:
        result["gpuShare"] = split.to_json()
        ms = split.to_json()["computeMs"]
        return [
            f"gpuShare {share:.3f}: compute_infer {ms['infer']:.1f} ms of "
            f"{sum(ms.values()):.1f} ms compute (input {ms['input']:.1f}, output "
            f"{ms['output']:.1f}) over {split.executions} executions: the part of a batch MPS "
            "interference slows (on a GPU backend infer also holds the launch overheads)"
        ]
    why = (
        "timing from the client: Triton's compute phases are unknown"
        if split is None
        else split.problem()
    )
    result["gpuShare"] = {"value": None, "note": why}
    return [
        f"note: gpuShare not measured ({why}): the row leaves it out, so under MPS "
        "interference the whole batch time is slowed"
    ]


def _serving_lines(
    m: Measurement, args: argparse.Namespace, row: dict[str, Any], result: dict[str, Any]
) -> list[str]:
    """The run's saturated throughput (``--instances-run``) and resources (``--pid``) into the
    row, and what they say."""
    from ..profiling import resource_levels, saturated_throughput

    lines: list[str] = []
    c = args.instances_run
    if c is not None:
        x = saturated_throughput(m.levels)
        row["instanceThroughput"] = {str(c): round(x, 3)}
        lines.append(
            f"{c} instance(s): {x:.1f} req/s at saturation (the highest level); merge runs at "
            "other instance counts (--merge) to fit the contention factor"
        )
    if args.pid is not None:
        block = resource_levels(m.traffic, m.idle, c or 1)
        row["resources"] = block
        result["resources"] = block
        table = [
            [lv["rps"], lv["cpuMean"], lv["cpuP95"], lv["memoryPeakMiB"], lv["samples"]]
            for lv in block["levels"]
        ]
        lines += [
            f"resources of process {args.pid} and its children (memory: {block['memory']}):",
            render(
                ["req/s", "CPU mean", "CPU p95", "memory peak MiB", "samples"],
                table,
                right={0, 1, 2, 3, 4},
            ),
        ]
    return lines


def run(args: argparse.Namespace) -> int:
    from ..profiling import (
        FitError,
        batch_entry,
        fit_batch,
        fit_g2,
        g2_entry,
        merge_row,
    )

    if args.requests < 1:
        raise InputError(f"--requests must be ≥ 1, got {args.requests}")
    _check_serving_args(args)
    result: dict[str, Any] = {}
    lines: list[str] = []
    if args.observations:
        if args.url:
            raise InputError("give a Triton URL or --observations, not both")
        if not args.name:
            raise InputError("--observations needs --name (the model's name in model-data)")
        points = read_observations(args.observations)
        try:
            fit = fit_g2(points)
        except FitError as exc:
            raise InputError(str(exc), source=args.observations) from None
        max_batch = args.max_batch or int(max(p.batch for p in points))
        row = g2_entry(
            args.name,
            args.accelerator,
            fit,
            max_batch_size=max_batch,
            at_tokens=args.at_tokens,
            acc_count=args.acc_count,
        )
        lines += [f"G2 fit of {len(points)} observation(s) from {args.observations}", ""]
    else:
        if not args.url or not args.model:
            raise InputError("give a Triton URL and --model, or --observations FILE")
        measurement = asyncio.run(_measure(args))
        try:
            fit = fit_batch(measurement.points)
        except FitError as exc:
            raise InputError(f"model {args.model!r}: {exc}") from None
        info = measurement.model
        split = measurement.compute
        row = batch_entry(
            args.name or args.model,
            args.accelerator,
            fit,
            max_batch_size=args.max_batch or info.max_batch_size,
            queue_delay_ms=info.queue_delay_us / 1000.0,
            acc_count=args.acc_count,
            gpu_share=split.share if split is not None else None,
        )
        shape = (
            "single-item requests batched by Triton"
            if measurement.shape == "single"
            else "b-item requests"
        )
        lines += [
            f"model {info.name} at {args.url}: max_batch_size {info.max_batch_size}, "
            f"{shape}, timing from the {measurement.source}",
            "",
            *_level_lines(measurement),
            "",
        ]
        lines += [f"note: {n}" for n in measurement.notes]
        lines += [""] if measurement.notes else []
        result["shape"] = measurement.shape
        result["levels"] = [lv.to_json() for lv in measurement.levels]
        result["itemLevels"] = [lv.to_json() for lv in measurement.item_levels]
        result["points"] = [
            {"batch": p.batch, "ms": p.ms, "executions": p.weight} for p in measurement.points
        ]
        result["source"] = measurement.source
        serving = [
            *_gpu_share_lines(measurement, result),
            *_serving_lines(measurement, args, row, result),
        ]
    result["fit"] = fit.to_json()
    result["row"] = row
    lines += _fit_lines(fit)
    if not args.observations:
        lines += _overhead_lines(measurement, fit, result, int(row["maxBatchSize"]))
        lines += ["", *serving] if serving else []
    lines += ["", "model-data row:", json.dumps(row, indent=2)]
    if args.out:
        Path(args.out).write_text(json.dumps(row, indent=2) + "\n", encoding="utf-8")
    if args.merge:
        target = Path(args.merge)
        source = str(target)
        doc = parse_json(read_text(target, source), source) if target.exists() else {}
        if not isinstance(doc, dict):
            raise InputError("expected a JSON object with 'models'", source=str(target))
        merged, replaced, notes = merge_row(doc, row)
        target.write_text(json.dumps(merged, indent=2) + "\n", encoding="utf-8")
        lines.append(f"{'merged' if replaced else 'added'} the row in {target}")
        lines += [f"note: {n}" for n in notes]
        result["merged"] = next(
            m
            for m in merged["models"]
            if m.get("name") == row["name"] and m.get("acc") == row["acc"]
        )
        result["mergeNotes"] = notes
        contention = result["merged"].get("contention")
        if contention:
            lines.append(
                "contention κ(c), c = 1, 2, …: " + ", ".join(f"{k:.3f}" for k in contention)
            )
    print(json.dumps(result, indent=2) if args.json else "\n".join(lines))
    return 0 if fit.ok else 1
