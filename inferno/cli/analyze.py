"""``inferno analyze FILE.json``: Inferno's single-server analyzer (queue-analysis)."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from ..errors import InputError
from ..model.profiles import (
    BatchProfile,
    G0Profile,
    G1Profile,
    G2Profile,
    G3Profile,
    Kind,
    Profile,
    Tokens,
)
from ._table import render

if TYPE_CHECKING:
    from ..data import AnalyzerProblem
    from ..model.analyzer import Analysis

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("analyze", help="analyze one server (queue-analysis JSON)")
    p.add_argument("file", help="problem JSON: RPS, maxBatchSize, AvgInputTokens, ... (see README)")
    p.add_argument(
        "--mode",
        choices=["auto", "solve", "target"],
        default="auto",
        help="solve: metrics at RPS; target: sizing to targetTTFT/targetITL "
        "(auto: target when the file has targets)",
    )
    p.add_argument(
        "--format",
        choices=["json", "table"],
        default="json",
        help="json: queue-analysis's fields (+ loadFraction); table: each with its unit",
    )
    p.add_argument(
        "--percentiles",
        action="store_true",
        help="also the exact p50/p95/p99 of wait, TTFT and response time (ms)",
    )
    p.set_defaults(func=run)


#: the table's label for each JSON field: its unit, and what utilization is not
UNITS = {
    "throughput": "throughput (req/s)",
    "avgRespTime": "avgRespTime (ms)",
    "avgWaitTime": "avgWaitTime (ms)",
    "avgNumInServ": "avgNumInServ (requests in service)",
    "avgTTFT": "avgTTFT (ms)",
    "avgITL": "avgITL (ms)",
    "maxRPS": "maxRPS (req/s)",
    "RPSTargetTTFT": "RPSTargetTTFT (req/s)",
    "RPSTargetITL": "RPSTargetITL (req/s)",
    "utilization": "utilization (share of time a batch runs: not the load)",
    "loadFraction": "loadFraction (throughput / maxRPS: the load)",
    "blocking": "blocking (share of requests refused: queue full)",
}
QUANTILES = (0.5, 0.95, 0.99)


def with_percentiles(pr: AnalyzerProblem, result: Analysis) -> dict[str, object]:
    """The exact wait, TTFT and response-time quantiles at the analysed throughput (ms)."""
    import numpy as np

    from ..model.analyzer import operating_point
    from ..model.quantiles import latency_quantiles, wait_quantiles

    profile, tokens = problem_profile(pr)
    point = operating_point(profile, tokens, pr.max_queue_size)
    rate = np.array([max(result.throughput, 1e-12) / 1000.0])  # per ms
    out: dict[str, object] = {}
    latency = latency_quantiles(point, rate, QUANTILES)[0]
    for j, q in enumerate(QUANTILES):
        wait = float(wait_quantiles(point, rate, q)[0])
        tag = f"p{round(q * 100)}"
        out[f"{tag}WaitTime"] = wait
        out[f"{tag}TTFT"] = wait + (result.avg_ttft - result.avg_wait_time)
        out[f"{tag}RespTime"] = float(latency[j])
    return out


def problem_profile(pr: AnalyzerProblem) -> tuple[Profile, Tokens]:
    tokens = Tokens(pr.in_tokens, pr.out_tokens)
    n = pr.max_batch_size
    if pr.kind is Kind.G0:
        return G0Profile(pr.alpha, pr.beta, n, float(n) * pr.out_tokens), tokens
    if pr.kind is Kind.G1:
        return G1Profile(pr.alpha, pr.beta, pr.gamma, pr.delta, n, float(n) * pr.out_tokens), tokens
    if pr.kind is Kind.G3:
        return G3Profile(pr.alpha, pr.beta, pr.gamma, n, None, pr.max_num_tokens), tokens
    if pr.kind is Kind.BATCH:
        return BatchProfile(pr.alpha, pr.beta, n), tokens
    return G2Profile(pr.alpha, pr.beta, pr.gamma, n), tokens


def analyze_problem(pr: AnalyzerProblem, mode: str = "auto") -> Analysis:
    from ..model.analyzer import analyze_rate, analyze_targets

    profile, tokens = problem_profile(pr)
    has_targets = pr.target_ttft is not None or pr.target_itl is not None
    if mode == "target" or (mode == "auto" and has_targets):
        return analyze_targets(
            profile, tokens, ttft=pr.target_ttft, itl=pr.target_itl, max_queue=pr.max_queue_size
        )
    if not pr.rps > 0:
        raise InputError(
            "must be > 0 to analyze at a rate (or give targetTTFT/targetITL)", path="$.RPS"
        )
    return analyze_rate(profile, tokens, pr.rps, pr.max_queue_size)


def run(args: argparse.Namespace) -> int:
    from ..data import load_analyzer_problem

    try:
        problem = load_analyzer_problem(args.file)
        result = analyze_problem(problem, args.mode)
        body: dict[str, object] = dict(result.to_json())
        if result.max_rps > 0 and result.throughput == result.throughput:
            body["loadFraction"] = result.throughput / result.max_rps
        if args.percentiles:
            body.update(with_percentiles(problem, result))
    except InputError as err:
        if err.source is None:
            err.source = str(args.file)
        raise
    if args.format == "json":
        print(json.dumps(body, indent=2))
    else:
        rows = [[UNITS.get(k, f"{k} (ms)" if k.startswith("p") else k), v] for k, v in body.items()]
        print(render(["metric", "value"], rows, right={1}))
    return 0
