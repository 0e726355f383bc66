"""Write tests/model/serving_reference.json: the batching-delay / several-instance model
(:mod:`inferno.model.bulk_instances`) evaluated on a grid, for test_serving_fast.py.

The committed file was written by the model as it was at commit 0af4550 (a Python loop over the
chain's states, one window at a time), before its evaluation was vectorised: the test holds the
fast code to those values (1e-9 relative). Run again it writes what the current code computes.

Usage: .venv/bin/python tests/model/make_serving_reference.py
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from inferno.model.bulk_instances import serving_metrics, serving_time

OUT = Path(__file__).with_name("serving_reference.json")

#: (α, β, N): the gpulets sample's resnet50 and mobilenet rows, the tests' rows, β = 0, N = 1
PROFILES = [
    (2.0, 0.35, 32),
    (1.0, 0.08, 64),
    (20.0, 2.0, 8),
    (10.0, 1.5, 4),
    (8.0, 1.8, 16),
    (3.0, 0.0, 8),
    (10.0, 1.0, 1),
]
#: (c, κ(c))
INSTANCES = [(1, 1.0), (2, 1.2), (3, 1.35)]
#: the delay as a fraction of κ·τ(N): 0 through the delay chain (c > 1), below τ(1), ½ (the
#: solver's option), one and beyond a full batch (the leftover-age approximation)
DELAYS = [0.0, 0.1, 0.5, 1.0, 2.5]
#: the offered load as a fraction of the capacity c·N/(κ·τ(N))
LOADS = [0.05, 0.4, 0.8, 0.95]
FIELDS = ("throughput", "response", "service", "wait", "avg_batch", "utilization", "blocking")


def _queue(n: int) -> list[int]:
    """K: the solver's K' = N + max(4N, 64), a short queue (K = 2N) and one so short that a
    run's arrivals can fill it before N wait (K < N + b: the capped case)."""
    return sorted({n + max(4 * n, 64), 2 * n, n + (n + 1) // 2})


def _rate(alpha: float, beta: float, n: int, c: int, kappa: float, load: float) -> float:
    return load * c * n / (kappa * (alpha + beta * n))


def metric_cases() -> list[dict[str, float]]:
    out = []
    for (alpha, beta, n), (c, kappa), d, load in itertools.product(
        PROFILES, INSTANCES, DELAYS, LOADS
    ):
        if d == 0.0 and c == 1:
            continue  # the plain bulk model, untouched
        for k in _queue(n):
            delay = d * kappa * (alpha + beta * n)
            case = {"alpha": alpha, "beta": beta, "n": n, "k": k, "c": c, "kappa": kappa}
            case |= {"delay": delay, "rate": _rate(alpha, beta, n, c, kappa, load)}
            m = serving_metrics(
                alpha, beta, n, k, case["rate"], delay=delay, instances=c, kappa=kappa
            )
            out.append(case | {f: float(getattr(m, f)) for f in FIELDS})
    return out


#: the distributions: fewer cases (one costs seconds at N = 32 with the old code)
TIME_PROFILES = [(2.0, 0.35, 32), (20.0, 2.0, 8), (10.0, 1.5, 4), (3.0, 0.0, 8), (10.0, 1.0, 1)]
TIME_MULTIPLES = [0.3, 0.8, 1.0, 1.5, 2.0, 3.0, 5.0]


def time_cases() -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for (alpha, beta, n), (c, kappa), d, load in itertools.product(
        TIME_PROFILES, INSTANCES[:2], [0.1, 0.5, 2.5], [0.4, 0.9]
    ):
        if n == 32 and (c, d, load) not in {(1, 0.5, 0.4), (2, 2.5, 0.9)}:
            continue
        k = n + max(4 * n, 64)
        tau_n = kappa * (alpha + beta * n)
        delay = d * tau_n
        rate = _rate(alpha, beta, n, c, kappa, load)
        rt = serving_time(alpha, beta, n, k, rate, delay=delay, instances=c, kappa=kappa)
        times = [f * tau_n for f in TIME_MULTIPLES]
        out.append(
            {
                "alpha": alpha,
                "beta": beta,
                "n": n,
                "k": k,
                "c": c,
                "kappa": kappa,
                "delay": delay,
                "rate": rate,
                "times": times,
                "survival": [float(x) for x in rt.survival(times)],
                "wait_survival": [float(x) for x in rt.wait_survival(times)],
            }
        )
    return out


def main() -> None:
    metrics, times = metric_cases(), time_cases()
    OUT.write_text(json.dumps({"metrics": metrics, "times": times}, indent=1) + "\n")
    print(f"wrote {OUT}: {len(metrics)} metric cases, {len(times)} distributions")


if __name__ == "__main__":
    main()
