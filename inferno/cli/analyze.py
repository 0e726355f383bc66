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
    p.add_argument("--format", choices=["json", "table"], default="json")
    p.set_defaults(func=run)


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
        result = analyze_problem(load_analyzer_problem(args.file), args.mode)
    except InputError as err:
        if err.source is None:
            err.source = str(args.file)
        raise
    if args.format == "json":
        print(json.dumps(result.to_json(), indent=2))
    else:
        rows = [[k, v] for k, v in result.to_json().items()]
        print(render(["metric", "value"], rows, right={1}))
    return 0
