"""What one rate costs on each model of c > 1 model instances with a batching delay
(inferno/model/bulk_instances.py): the chain over the residual batch times
(bulk_multi_delay.py) against the virtual instance (``virtual=True``), for the means (what a
λ* search evaluates) and for the response-time distribution (what a latency-quantile search
evaluates).

Rows: the accuracy bench's profile (α 20 ms, β 2 ms, N 8) and samples/gpulets' resnet50 on an
H100 (α 1.2 ms, β 0.21 ms, N 32), c = 2 and 3 at κ(c) = 1.2 and 1.35, the decision's delay
½·κ·τ(N), at 30% and 90% of the capacity c·N/(κ·τ(N)); K − N = 4N, the solver's cap. Each
time is the median of ``--repeat`` runs with the chains' memo and rooms cleared first (a first
evaluation; the residual multisets, which do not depend on the rate, are kept after the first).

Usage: python bench/instance_models.py [--repeat 3] [--markdown]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from _tables import print_table  # bench/, first on sys.path when run as a script

from inferno.model import bulk_instances
from inferno.model.bulk_instances import serving_metrics, serving_time

PROFILES = (("N 8", 20.0, 2.0, 8), ("N 32", 1.2, 0.21, 32))
INSTANCES = ((2, 1.2), (3, 1.35))
LOADS = (0.3, 0.9)


def _median_ms(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        bulk_instances.clear_memo()
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return 1000.0 * statistics.median(times)


def _cells(
    alpha: float, beta: float, n: int, lam: float, c: int, kappa: float, delay: float, repeat: int
) -> list[float]:
    """Milliseconds: the chain's means, the virtual instance's, then their distributions (the
    survival at τ(N))."""

    def means(virtual: bool) -> object:
        return serving_metrics(
            alpha, beta, n, 5 * n, lam, delay=delay, instances=c, kappa=kappa, virtual=virtual
        )

    def distribution(virtual: bool) -> object:
        rt = serving_time(
            alpha, beta, n, 5 * n, lam, delay=delay, instances=c, kappa=kappa, virtual=virtual
        )
        return rt.survival([kappa * (alpha + beta * n)])

    means(False)  # the residual multisets, which do not depend on the rate: built once
    return [
        _median_ms(lambda: means(False), repeat),
        _median_ms(lambda: means(True), repeat),
        _median_ms(lambda: distribution(False), repeat),
        _median_ms(lambda: distribution(True), repeat),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    rows = []
    for name, alpha, beta, n in PROFILES:
        for c, kappa in INSTANCES:
            tau_n = kappa * (alpha + beta * n)
            for load in LOADS:
                lam = load * c * n / tau_n
                cells = _cells(alpha, beta, n, lam, c, kappa, 0.5 * tau_n, args.repeat)
                rows.append(
                    [
                        name,
                        str(c),
                        f"{load:.1f}",
                        f"{cells[0]:.0f}",
                        f"{cells[1]:.1f}",
                        f"{cells[0] / cells[1]:.0f}",
                        f"{cells[2]:.0f}",
                        f"{cells[3]:.0f}",
                    ]
                )
    print_table(
        [
            "profile",
            "c",
            "load",
            "chain means ms",
            "virtual means ms",
            "ratio",
            "chain distribution ms",
            "virtual distribution ms",
        ],
        rows,
        markdown=args.markdown,
    )


if __name__ == "__main__":
    main()
