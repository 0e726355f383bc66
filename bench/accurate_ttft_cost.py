"""What varying lengths cost the accurate model's TTFT distribution: the time of
``ttft_quantiles`` (the 95th percentile of every point, what ``slo-ttft-quantile`` sizing and
``--percentiles`` ask) over 1,000 G2 and G3 points at half their capacity, with fixed lengths,
varying output lengths (CV 1) and varying prompts too (CV 1). Rows with varying lengths are a
mixture over 17 nodes of the request's own lengths (docs/model.md, "Accurate mode" item 6).

A second table: what a cap on the output lengths (``outTokensMax``, item 7) costs the build and
the latency's 95th percentile (``latency_quantiles``) of ``--distinct`` G2 points (output means
512, 513, …: the quantile search runs once per distinct point) with lognormal outputs of CV
1.5. The capped family's parameters are solved once per distinct state and remembered.

Usage::

    python bench/accurate_ttft_cost.py [--points 1000] [--repeat 3] [--distinct 100]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from inferno.model.accurate import AccuratePoints
from inferno.model.profiles import G2Profile, G3Profile, Profile, Tokens
from inferno.model.quantiles import latency_quantiles, ttft_quantiles

KINDS: tuple[tuple[str, Profile, Tokens], ...] = (
    ("G2", G2Profile(12.0, 0.05, 5e-4, 32), Tokens(512, 128)),
    ("G3", G3Profile(16.0, 0.067, 6.67e-4, 32, None, 4096), Tokens(2048, 256)),
)
LENGTHS = (("fixed", 0.0, 0.0), ("outputs CV 1", 1.0, 0.0), ("outputs and prompts CV 1", 1.0, 1.0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--distinct", type=int, default=100)
    args = ap.parse_args()
    n = args.points
    print(f"| kind | lengths | build {n} points, s | TTFT p95 of {n} points, s |")
    print("|---|---|---|---|")
    for kind, profile, tokens in KINDS:
        for label, out_cv, in_cv in LENGTHS:
            build, ttft = [], []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                pts = AccuratePoints.of_accurate(
                    [profile] * n,
                    [tokens] * n,
                    out_cv=[out_cv] * n,
                    in_cv=[in_cv] * n,
                    batch=[32] * n,
                )
                t1 = time.perf_counter()
                q = ttft_quantiles(pts, 0.5 * pts.mu_n, 0.95)
                t2 = time.perf_counter()
                assert np.isfinite(q).all()
                build.append(t1 - t0)
                ttft.append(t2 - t1)
            print(f"| {kind} | {label} | {min(build):.3f} | {min(ttft):.3f} |")
    print()
    d = args.distinct
    print(f"| G2, lognormal outputs CV 1.5 | build {d} points, s | latency p95 of {d} points, s |")
    print("|---|---|---|")
    profile = KINDS[0][1]
    for cap in (None, 8192.0, 2048.0):
        build, lat = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            pts = AccuratePoints.of_accurate(
                [profile] * d,
                [Tokens(128, 512 + i) for i in range(d)],
                out_cv=[1.5] * d,
                out_dist=["lognormal"] * d,
                out_max=[cap] * d,
                batch=[32] * d,
            )
            t1 = time.perf_counter()
            q = latency_quantiles(pts, 0.5 * pts.mu_n, [0.95])
            t2 = time.perf_counter()
            assert np.isfinite(q).all()
            build.append(t1 - t0)
            lat.append(t2 - t1)
        label = "no cap" if cap is None else f"capped at {cap:,.0f}"
        print(f"| {label} | {min(build):.3f} | {min(lat):.3f} |")


if __name__ == "__main__":
    main()
