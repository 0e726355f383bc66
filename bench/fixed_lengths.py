"""What the collector's spread bound is worth on fixed lengths: the accurate mode's cost of
``bench/accurate_cost.py``'s ``g1`` and ``g2`` systems (128-token prompts, 512-token outputs,
every request alike) as the collector now reports such a server, and as it did before.

A histogram of fixed lengths has every request in one bucket. Before, the collector fitted
nothing there, and the accurate model took its defaults: output CV 1 (exponential), prompts
fixed. Now it reports the most spread the bucket allows (``inferno.prom.lengths``, the
Bhatia–Davis bound; here the prompts' and the outputs' both, fitted by the collector's own code
on a histogram of the fixed lengths). The truth is CV 0 (what the data of ``accurate_cost.py``
state, and what its emulation of these systems verifies):

    .venv/bin/python bench/fixed_lengths.py [--markdown]    # a few seconds
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import accurate_cost as ac  # bench/, first on sys.path when run as a script
import numpy as np
from _tables import print_table

from inferno.data import load_system
from inferno.emulator import Fixed
from inferno.emulator.records import cumulative_counts
from inferno.simulate.metrics import fit_histogram
from inferno.solver import solve
from inferno.system import System


def collector_cv(n: int) -> float | None:
    """The collector's CV of 2,000 requests of exactly ``n`` tokens (None: no fit)."""
    x = Fixed(n).sample(2000, np.random.default_rng(0))
    fit = fit_histogram(cumulative_counts(x), float(x.mean()))
    return None if fit is None else fit.cv


def told(system: System, out_cv: float | None, in_cv: float | None) -> System:
    servers = tuple(
        replace(s, load=replace(s.load, out_tokens_cov=out_cv, in_tokens_cov=in_cv))
        for s in system.servers
    )
    return ac.with_model(replace(system, servers=servers), "accurate")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    out_cv, in_cv = collector_cv(ac.SYNTH_OUT), collector_cv(ac.SYNTH_IN)
    base = load_system(ac.SAMPLE)
    rows = []
    for kind in ("G1", "G2"):
        system = ac.synthetic(base, kind, 0.0)
        truth = solve(told(system, 0.0, None)).total_cost
        before = solve(told(system, None, None)).total_cost
        now = solve(told(system, out_cv, in_cv)).total_cost
        inferno = solve(ac.with_model(system, "inferno")).total_cost
        rows.append(
            [
                kind.lower(),
                f"{inferno:,.0f}",
                f"{truth:,.0f}",
                f"{before:,.0f} ({before / truth:.3f}×)",
                f"{now:,.0f} ({now / truth:.3f}×)",
            ]
        )
    print(
        f"collector's CV of fixed lengths: outputs {ac.SYNTH_OUT} → {out_cv:.4f}, "
        f"prompts {ac.SYNTH_IN} → {in_cv:.4f} (before: no fit, the model's defaults 1 and 0)\n"
    )
    headers = [
        "system",
        "inferno cost",
        "accurate, told CV 0",
        "accurate, collector before",
        "accurate, collector now",
    ]
    print_table(headers, rows, args.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
