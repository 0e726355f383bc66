"""Where a policy's SLO misses go, in time and by server, on one closed-loop scenario.

Runs a scenario of ``bench/scenarios/`` (as ``bench/closed_loop.py`` does: ``--lengths``,
``--seed``, ``--set key=value`` for the Inferno policy's deployed settings) with the ``inferno``
policy and the oracle, judges every request (:func:`inferno.simulate.slo.judge`, as the report
does), and groups the requests that missed their SLO by the control period they arrived in.
Consecutive periods with misses make an *episode*; the table lists the episodes that hold the
most misses, each with its time span, its misses (as a share of all the run's requests: the
points of SLO attainment it costs), the servers that missed most in it, and the oracle's misses
over the same span.

Usage: python bench/misses.py [--scenario replay] [--lengths fixed|exp] [--seed N]
[--set key=value ...] [--top 8] [--markdown]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import yaml
from _tables import print_table  # bench/, first on sys.path when run as a script
from closed_loop import SCENARIOS_DIR, parse_variant, variant_doc

from inferno.simulate import parse_scenario, run_scenario
from inferno.simulate.run import PolicyRun, RunResult
from inferno.simulate.slo import judge


@dataclass(frozen=True, slots=True)
class Misses:
    """A policy's missed requests by server and period, and its judged requests in all."""

    by_server: dict[str, np.ndarray]  # server → misses per period
    judged: int

    def total(self) -> np.ndarray:
        out = np.zeros_like(next(iter(self.by_server.values())))
        for v in self.by_server.values():
            out = out + v
        return out


def count_misses(result: RunResult, run: PolicyRun) -> Misses:
    """Every judged request of ``run`` that missed its SLO, by server and arrival period."""
    scenario = result.scenario
    system = scenario.system
    edges = np.asarray([0.0, *scenario.period_ends_ms])
    by_server: dict[str, np.ndarray] = {}
    judged = 0
    for name in run.cluster.server_names():
        server = scenario.server(name)
        cls = system.classes.get(server.service_class)
        target = cls.targets.get(server.model) if cls is not None else None
        j = judge(run.sim.records(name), target, run.sim.now)
        missed = j.judged & ~j.met
        which = np.clip(np.searchsorted(edges, j.arrival[missed], side="right") - 1, 0, None)
        by_server[name] = np.bincount(which, minlength=len(edges) - 1)[: len(edges) - 1]
        judged += int(j.judged.sum())
    return Misses(by_server, judged)


def episodes(total: np.ndarray) -> list[tuple[int, int]]:
    """Runs of consecutive periods with misses, as (first, last) period indices."""
    out: list[tuple[int, int]] = []
    start = None
    for k, m in enumerate(total):
        if m > 0 and start is None:
            start = k
        elif m == 0 and start is not None:
            out.append((start, k - 1))
            start = None
    if start is not None:
        out.append((start, len(total) - 1))
    return out


def table(
    result: RunResult, inferno: Misses, oracle: Misses, top: int
) -> tuple[list[str], list[list[str]]]:
    period_s = result.scenario.control_period_s
    total = inferno.total()
    spans = sorted(episodes(total), key=lambda e: -int(total[e[0] : e[1] + 1].sum()))
    rows: list[list[str]] = []
    for a, b in spans[:top]:
        n = int(total[a : b + 1].sum())
        worst = sorted(
            ((int(v[a : b + 1].sum()), s) for s, v in inferno.by_server.items()), reverse=True
        )
        names = ", ".join(f"{s} {m}" for m, s in worst[:2] if m > 0)
        o = int(oracle.total()[a : b + 1].sum())
        rows.append(
            [
                f"{a * period_s:g}–{(b + 1) * period_s:g} s",
                f"{n}",
                f"{100.0 * n / inferno.judged:.2f}",
                names,
                f"{o}",
            ]
        )
    rest = int(total.sum()) - sum(int(total[a : b + 1].sum()) for a, b in spans[:top])
    rows.append(["the other episodes", f"{rest}", f"{100.0 * rest / inferno.judged:.2f}", "", ""])
    n_all = int(total.sum())
    o_all = int(oracle.total().sum())
    rows.append(["all", f"{n_all}", f"{100.0 * n_all / inferno.judged:.2f}", "", f"{o_all}"])
    headers = ["arrived in", "missed", "points of SLO", "servers that missed most", "oracle missed"]
    return headers, rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="replay", help="a stem of bench/scenarios/")
    parser.add_argument("--lengths", choices=("fixed", "exp"), default="fixed")
    parser.add_argument("--seed", type=int, default=None, help="default: the scenario's own")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--top", type=int, default=8, help="episodes listed")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    path = SCENARIOS_DIR / f"{args.scenario}.yaml"
    doc = variant_doc(
        yaml.safe_load(path.read_text(encoding="utf-8")), args.lengths, False, seed=args.seed
    )
    settings = parse_variant("x:" + ",".join(args.set))[1] if args.set else {}
    doc["policies"] = [{"inferno": settings} if settings else "inferno", "oracle"]
    result = run_scenario(parse_scenario(doc, source=str(path), base=path.parent))
    inferno, oracle = (count_misses(result, run) for run in result.runs)
    headers, rows = table(result, inferno, oracle, args.top)
    print(
        f"{args.scenario}, {args.lengths} lengths, seed {doc.get('seed')}: "
        f"{inferno.judged:,} requests judged; inferno meets "
        f"{100.0 * (1 - int(inferno.total().sum()) / inferno.judged):.2f}%, the oracle "
        f"{100.0 * (1 - int(oracle.total().sum()) / oracle.judged):.2f}%"
    )
    print_table(headers, rows, markdown=args.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
