"""``inferno simulate SCENARIO``: run a scenario's policies on the emulator and compare them."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ..errors import InputError
from ._table import render

if TYPE_CHECKING:
    from ..simulate import Progress
    from ..simulate.report import Report

__all__ = ["ProgressBar", "add_parser", "format_report", "run"]

logger = logging.getLogger(__name__)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "simulate",
        help="run a scenario's policies (Inferno and baselines) on the emulator and compare them",
    )
    p.add_argument("scenario", help="the scenario file (YAML or JSON; see docs/simulate.md)")
    p.add_argument(
        "--out",
        default=None,
        help="directory for the CSV time series and the plots (default: out/<scenario name>)",
    )
    p.add_argument("--no-plots", action="store_true", help="write the CSV files only")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--force",
        action="store_true",
        help="run even when the run is estimated above the limit of events (docs/simulate.md)",
    )
    p.set_defaults(func=run)


class ProgressBar:
    """A one-line progress bar on a terminal; on anything else, one line per policy."""

    def __init__(self, stream: TextIO, width: int = 30) -> None:
        self.stream = stream
        self.width = width
        self.tty = stream.isatty()
        self.started = time.perf_counter()
        self._last = 0.0

    def __call__(self, p: Progress) -> None:
        now = time.perf_counter()
        finished_policy = p.period == p.periods
        if self.tty:
            if not finished_policy and now - self._last < 0.1:
                return
            self._last = now
            frac = p.done / p.total if p.total else 1.0
            filled = int(round(frac * self.width))
            bar = "#" * filled + "-" * (self.width - filled)
            self.stream.write(
                f"\r[{bar}] {100 * frac:5.1f}%  {p.policy} ({p.policy_index + 1}/{p.policies}) "
                f"period {p.period}/{p.periods}  {now - self.started:5.1f} s "
            )
            if p.done == p.total:
                self.stream.write("\n")
            self.stream.flush()
        elif finished_policy:
            self.stream.write(
                f"simulated {p.policy} ({p.policy_index + 1}/{p.policies}): "
                f"{p.periods} periods, {now - self.started:.1f} s\n"
            )
            self.stream.flush()


def format_report(report: Report) -> str:
    from ..simulate.tables import (
        class_rows,
        comparison_lines,
        server_lines,
        summary_rows,
        sweep_lines,
    )

    sc = report.result.scenario
    out = [
        f"scenario {sc.source}: {len(report.result.initial)} servers, {sc.duration_s:g} s "
        f"simulated, control every {sc.control_period_s:g} s, start-up {sc.startup_delay_s:g} s, "
        f"seed {sc.seed}",
        "",
    ]
    headers, rows = summary_rows(report)
    out.append(render(headers, rows, right=set(range(1, len(headers)))))
    lines = sweep_lines(report) + comparison_lines(report)
    if lines:
        out += ["", *lines]
    headers, rows = class_rows(report)
    out += ["", render(headers, rows, right=set(range(2, len(headers))))]
    lines = server_lines(report)
    if lines:
        out += ["", *lines]
    notes = list(report.result.notes)
    for r in report.result.runs:
        notes += [f"{r.spec.name}: {n}" for n in r.notes]
    if notes:
        out += ["", *(f"note: {n}" for n in notes)]
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    # imported here: the Kubernetes client behind the control code takes half a second to load
    from ..simulate import (
        build_report,
        load_scenario,
        run_scenario,
        write_csv,
        write_plots,
        write_summary,
    )
    from ..simulate.limits import check_run_size, estimate_run

    scenario = load_scenario(args.scenario)
    if args.force:
        logger.info("run of %s (not checked: --force)", estimate_run(scenario).describe())
    else:
        logger.info("run of %s", check_run_size(scenario).describe())
    out_dir = Path(args.out) if args.out else Path("out") / Path(args.scenario).stem
    bar = None if args.quiet else ProgressBar(sys.stderr)
    try:
        result = run_scenario(scenario, bar)
    except InputError as err:  # a model limit met while sizing (inferno.model)
        err.source = err.source or args.scenario
        raise
    report = build_report(result)
    print(format_report(report))
    csv_files = write_csv(report, out_dir)
    summary = write_summary(report, out_dir)
    print("")
    print("time series: " + ", ".join(str(f) for f in csv_files))
    print(f"summary: {summary}")
    if not args.no_plots:
        pngs = write_plots(report, out_dir)
        print("plots: " + ", ".join(str(f) for f in pngs))
    print(f"wall time: {result.wall_s:.1f} s")
    return 0
