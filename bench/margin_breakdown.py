"""Where the Inferno policy's sizing margin goes, cycle by cycle, on one closed-loop scenario.

Runs a scenario of ``bench/scenarios/`` (default: the diurnal day) with the ``inferno`` policy
only, records every forecast the policy sizes a server by — its own filter's
(:func:`inferno.control.forecast.plan_rate`) or, with ``forecast_pool`` (the default), the pooled
one that replaced it (:func:`inferno.control.pool.pooled_forecast`), as
:mod:`inferno.control.policy` calls them — and prints how the rate it sized for splits:

- **base / measured**: the forecast's base (before the margin) over the measured rate (how much
  the forecast itself adds);
- the **margin** on top of the base, split by the term that set it. Own filter: ``margin =
  max(z·σ, J)``, ``σ² = max(grown error, Poisson floor)``: the tracked forecast error, the
  Poisson floor of the count, or a held surprise ``J``. Pooled: ``max(z·σᵢ, 2·J_Y)``: the sum's
  and the share's error, or the sum's held surprise. Each row gives the share of forecasts it
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
from inferno.control.pool import SURPRISE_GAIN, Pool, pooled_forecast
from inferno.simulate import parse_scenario, run_scenario


@dataclass(slots=True)
class Seen:
    forecast: Forecast
    track: Track
    params: ForecastParams
    #: the pooled forecast's held surprise (SURPRISE_GAIN·J_Y) when the pool sized the server,
    #: None when its own filter did
    pooled_hold: float | None = None


def record(doc: dict[str, Any], path: Path) -> list[Seen]:
    """Every forecast the inferno policy sizes by while the scenario runs: its own filter's, or
    the pooled one that replaced it (``forecast_pool``)."""
    seen: list[Seen] = []

    def spy(
        track: Track, measured: float, p: ForecastParams, backlog_excess: float = 0.0
    ) -> Forecast:
        f = plan_rate(track, measured, p, backlog_excess)
        seen.append(Seen(f, track, p))
        return f

    def spy_pool(
        pool: Pool,
        name: str,
        own: Track,
        measured: float,
        p: ForecastParams,
        now: float,
        backlog_excess: float = 0.0,
    ) -> Forecast | None:
        f = pooled_forecast(pool, name, own, measured, p, now, backlog_excess)
        if f is not None:  # it replaces the server's own forecast of this cycle
            last = next(s for s in reversed(seen) if s.track is own)
            jump = pool.total.jump if pool.total is not None else 0.0
            last.forecast, last.pooled_hold = f, SURPRISE_GAIN * jump
        return f

    # the policy module's own names for the functions (it imported them)
    namespace = vars(policy_module)
    namespace["plan_rate"], namespace["pooled_forecast"] = spy, spy_pool
    try:
        run_scenario(parse_scenario(doc, source=str(path), base=path.parent))
    finally:
        namespace["plan_rate"], namespace["pooled_forecast"] = plan_rate, pooled_forecast
    return seen


TERMS = (
    "own filter: tracked forecast error",
    "own filter: Poisson floor",
    "own filter: held surprise J",
    "pooled: the sum's and the share's error (z·σ)",
    "pooled: the sum's held surprise (2·J_Y)",
)


def _term(s: Seen, base: float) -> str:
    f, t, p = s.forecast, s.track, s.params
    if s.pooled_hold is not None:
        held = s.pooled_hold > 0 and s.pooled_hold >= f.margin - 1e-12
        return TERMS[4] if held else TERMS[3]
    steps = max(p.horizon_s / p.period_s, 1.0)
    grown = p.margin_z * math.sqrt(t.variance * (1.0 + (steps - 1.0) * p.alpha**2))
    floor = p.margin_z * math.sqrt(60.0 / (base * p.window_s) * p.smoothing) if base > 0 else 0
    if t.jump >= max(grown, floor):
        return TERMS[2]
    return TERMS[0] if grown > floor else TERMS[1]


def breakdown(seen: Sequence[Seen]) -> tuple[list[str], list[list[str]]]:
    n = len(seen)
    terms = dict.fromkeys(TERMS, 0.0)
    wins = dict.fromkeys(TERMS, 0)
    base_ratio = smooth_wins = 0.0
    own = 0
    for s in seen:
        f, t = s.forecast, s.track
        base = f.target - f.drain
        base = base / (1.0 + f.margin) if f.margin > -1.0 else base
        if f.measured > 0:
            base_ratio += base / f.measured
        if s.pooled_hold is None:
            own += 1
            smooth_wins += 1.0 if t.smooth >= max(f.now, f.ahead) else 0.0
        key = _term(s, base)
        terms[key] += f.margin
        wins[key] += 1
    headers = ["part", "share of forecasts", "mean, % of the rate"]
    rows = [
        ["base / measured (forecast over the measured rate)", "100%", _pct(base_ratio / n - 1)],
        ["forecasts by the pool", _pct((n - own) / n), "-"],
        ["… own filter's: the smoothed rate is the base", _pct(smooth_wins / n), "-"],
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
