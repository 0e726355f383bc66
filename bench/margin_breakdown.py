"""Where the Inferno policy's sizing margin goes, cycle by cycle, on one closed-loop scenario.

Runs a scenario of ``bench/scenarios/`` (default: the diurnal day) with the ``inferno`` policy
only, records every forecast the policy makes (:func:`inferno.control.forecast.plan_rate`, as
:mod:`inferno.control.policy` calls it), and prints how the rate it sized for splits:

- **base / measured**: the largest of the smoothed rate, the forecast now and the forecast at the
  horizon, over the measured rate (how much the forecast itself adds);
- the **margin** on top of the base, split by the term that set it (``margin =
  max(z·σ, J)``, ``σ² = max(grown error, Poisson floor)``): the tracked forecast error, the
  Poisson floor of the count, or a held surprise ``J``; each row gives the share of forecasts it
  set and its contribution to the mean margin (its margins summed over all forecasts).

The numbers are those of the deployed code with the deployed defaults (``--variant`` style
``key=value`` settings may be given, as in ``bench/closed_loop.py``).

Usage: python bench/margin_breakdown.py [--scenario diurnal] [--lengths fixed|exp]
[--set key=value ...] [--markdown]
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from _tables import print_table  # bench/, first on sys.path when run as a script
from closed_loop import SCENARIOS_DIR, parse_variant, variant_doc

import inferno.control.policy as policy_module
from inferno.control.forecast import Forecast, ForecastParams, Track, plan_rate
from inferno.simulate import parse_scenario, run_scenario


@dataclass(frozen=True, slots=True)
class Seen:
    forecast: Forecast
    track: Track
    params: ForecastParams


def record(doc: dict[str, Any], path: Path) -> list[Seen]:
    """Every forecast the inferno policy makes while the scenario runs."""
    seen: list[Seen] = []

    def spy(
        track: Track, measured: float, p: ForecastParams, backlog_excess: float = 0.0
    ) -> Forecast:
        f = plan_rate(track, measured, p, backlog_excess)
        seen.append(Seen(f, track, p))
        return f

    # the policy module's own name for the function (it imported it from .forecast)
    namespace = vars(policy_module)
    namespace["plan_rate"] = spy
    try:
        run_scenario(parse_scenario(doc, source=str(path), base=path.parent))
    finally:
        namespace["plan_rate"] = plan_rate
    return seen


def breakdown(seen: Sequence[Seen]) -> tuple[list[str], list[list[str]]]:
    n = len(seen)
    terms = {"tracked forecast error": 0.0, "Poisson floor": 0.0, "held surprise J": 0.0}
    wins = dict.fromkeys(terms, 0)
    base_ratio = smooth_wins = 0.0
    for s in seen:
        f, t, p = s.forecast, s.track, s.params
        base = f.target - f.drain
        base = base / (1.0 + f.margin) if f.margin > -1.0 else base
        if f.measured > 0:
            base_ratio += base / f.measured
        smooth_wins += 1.0 if t.smooth >= max(f.now, f.ahead) else 0.0
        steps = max(p.horizon_s / p.period_s, 1.0)
        grown = p.margin_z * math.sqrt(t.variance * (1.0 + (steps - 1.0) * p.alpha**2))
        floor = p.margin_z * math.sqrt(60.0 / (base * p.window_s) * p.smoothing) if base > 0 else 0
        if t.jump >= max(grown, floor):
            key = "held surprise J"
        else:
            key = "tracked forecast error" if grown > floor else "Poisson floor"
        terms[key] += f.margin
        wins[key] += 1
    headers = ["part", "share of forecasts", "mean, % of the rate"]
    rows = [
        ["base / measured (forecast over the measured rate)", "100%", _pct(base_ratio / n - 1)],
        ["… the smoothed rate is the base", _pct(smooth_wins / n), "-"],
    ]
    rows += [[f"margin: {k}", _pct(wins[k] / n), _pct(v / n)] for k, v in terms.items()]
    rows.append(["margin, all", "100%", _pct(sum(terms.values()) / n)])
    return headers, rows


def _pct(x: float) -> str:
    return f"{100.0 * x:.1f}%"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="diurnal", help="a stem of bench/scenarios/")
    parser.add_argument("--lengths", choices=("fixed", "exp"), default="fixed")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    path = SCENARIOS_DIR / f"{args.scenario}.yaml"
    doc = variant_doc(yaml.safe_load(path.read_text(encoding="utf-8")), args.lengths, False)
    settings = parse_variant("x:" + ",".join(args.set))[1] if args.set else {}
    doc["policies"] = [{"inferno": settings} if settings else "inferno"]
    seen = record(doc, path)
    headers, rows = breakdown(seen)
    print(f"{args.scenario}, {args.lengths} lengths: {len(seen)} forecasts")
    print_table(headers, rows, markdown=args.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
