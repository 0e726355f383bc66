"""The options that change a decision, shared by the commands that decide a system
(``optimize``, ``explain``, ``recipe``): each overrides what ``optimizer-data.json`` says, so that
``explain`` and ``recipe`` show the decision ``optimize`` prints with the same flags."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from ..errors import InputError
from ..system import BatchPolicy, PerformanceModel, System

__all__ = ["add_decision_arguments", "decided"]


def add_decision_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--limited",
        action="store_true",
        help="apply capacity limits even if optimizer data says unlimited",
    )
    p.add_argument(
        "--exact-wait-quantile",
        action="store_true",
        help="judge slo-ttw on the true wait quantile instead of Inferno's mean-based rule",
    )
    p.add_argument(
        "--decide-serving",
        action="store_true",
        help="decide Triton's model instances and batching delay for batch-kind rows with "
        "measured contention (about 0.2 s per such server; docs/triton.md)",
    )
    p.add_argument(
        "--offer-no-delay",
        action="store_true",
        help="with --decide-serving, also offer several instances without a batching delay "
        "(often cheaper; a first decision takes minutes; docs/triton.md)",
    )
    p.add_argument(
        "--batch-policy",
        choices=[b.value for b in BatchPolicy],
        default=None,
        help="memory: Inferno's memory-scaled batch; knee: smallest batch within 1%% of the best",
    )
    p.add_argument(
        "--model",
        choices=[m.value for m in PerformanceModel],
        default=None,
        help="inferno: Inferno's chain (default); accurate: iteration-level batching, output "
        "lengths and join stalls (docs/model.md, Accurate mode)",
    )
    p.add_argument(
        "--queue-factor",
        type=float,
        default=None,
        help="queue length K − N as a multiple of the batch N for every server (0: K = N)",
    )


def decided(args: argparse.Namespace, system: System) -> System:
    """``system`` with the optimizer data overridden by the flags of
    :func:`add_decision_arguments` (``args.directory``: the system's directory)."""
    from ..data.limits import MAX_QUEUE_FACTOR

    spec = system.optimizer
    if args.limited:
        capacity_file = Path(args.directory) / "capacity-data.json"
        if not capacity_file.is_file():
            raise InputError(
                "--limited needs this file, which is missing", source=str(capacity_file)
            )
        spec = replace(spec, unlimited=False)
    if args.exact_wait_quantile:
        spec = replace(spec, exact_wait_quantile=True)
    if args.decide_serving:
        spec = replace(spec, decide_serving=True)
    if args.offer_no_delay:
        spec = replace(spec, offer_no_delay=True)
    if args.batch_policy:
        spec = replace(spec, batch_policy=BatchPolicy(args.batch_policy))
    if args.model:
        spec = replace(spec, model=PerformanceModel(args.model))
    if args.queue_factor is not None:
        if not 0 <= args.queue_factor <= MAX_QUEUE_FACTOR:
            raise InputError(
                f"--queue-factor must be in [0, {MAX_QUEUE_FACTOR:g}], got {args.queue_factor}"
            )
        spec = replace(spec, queue_factor=args.queue_factor)
    return replace(system, optimizer=spec)
