"""The accurate model's joins with room in the batch, against one emulated replica.

The requests that join at an iteration boundary arrived during the iteration just ended: λ·D(b)
after a decode iteration, λ·P̄ after a prefill (``inferno/model/_accurate_core.py``,
``prefill_joins``). The rule before counted λ·D(b) at every boundary, which is exact only when a
prefill lasts as long as a decode. Two servers where they differ:

- ``G1 cheap prefill``: G1 α 6.29 β 0.27 γ 12.58 δ 0.00054 at N = 256, 1826-token prompts and 80
  output tokens (fixed): a prefill of a few joiners takes ~14 ms, a decode at b = 200 ~60 ms;
- ``G1 cheap prefill, CV 0.5``: the same with lognormal output lengths of mean 80 and CV 0.5
  (the model told so);
- ``G2 long prompts``: G2 α 12 β 0.05 γ 5e-4 at N = 32, 2048-token prompts and 256 output
  tokens (fixed): a prefill is longer than a decode.

For each, at ρ of the accurate model's capacity μ(N): the ITL and TTFT means of the model, of the
model with the rule before (the same code, ``prefill_joins`` replaced), and of the emulator
(Poisson arrivals, deterministic iterations, K = 3N, 20,000 requests, the first 5% left out).

Then the G1 server with outputs of CV 0.5 sized on an ITL target of 21 ms, whose ITL rises
above it and falls below it again (docs/model.md, "Sizing", *Where a metric is not monotone*):
λ* searched between the ends of the range alone, and λ* as the first crossing (``size``), each
as a fraction of the top (0.999 μ(N)), with the emulator's ITL at 0.6 of the top and at the
first crossing.

Usage::

    python bench/accurate_joins.py [--markdown]
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from _tables import print_table  # bench/, first on sys.path when run as a script
from numpy.typing import NDArray

from inferno.emulator import Fixed, LogNormal, Poisson, ServerSpec, Simulation
from inferno.model import _accurate_core as core
from inferno.model import sizing
from inferno.model.accurate import AccuratePoints
from inferno.model.profiles import G1Profile, G2Profile, Profile, Tokens
from inferno.model.sizing import SloArrays
from inferno.units import MS_PER_MIN

F = NDArray[np.float64]
G1_CHEAP = G1Profile(6.29, 0.27, 12.58, 0.00054, 256, 1.0)
#: (label, profile, N, tokens, output lengths' CV: 0 fixed, else lognormal)
CASES: list[tuple[str, Profile, int, Tokens, float]] = [
    ("G1 cheap prefill", G1_CHEAP, 256, Tokens(1826, 80), 0.0),
    ("G1 cheap prefill, CV 0.5", G1_CHEAP, 256, Tokens(1826, 80), 0.5),
    ("G2 long prompts", G2Profile(12.0, 0.05, 5e-4, 32), 32, Tokens(2048, 256), 0.0),
]
RHOS = (0.2, 0.4, 0.6, 0.8, 0.95)
REQUESTS = 20_000
ITL_TARGET = 21.0


def _joins_of_a_decode_iteration(lam: F, decode: F, pre0: F, pre1: F, room: F) -> tuple[F, F]:
    """The rule before: λ·D(b) joiners at every boundary, whatever the iteration before."""
    j = np.broadcast_to(lam * decode, np.broadcast_shapes(np.shape(lam * decode), np.shape(room)))
    q = -np.expm1(-j)
    return q, pre0 + pre1 * np.where(q > 1e-12, j / np.maximum(q, 1e-300), 1.0)


@contextmanager
def rule_before() -> Iterator[None]:
    now = core.prefill_joins
    core.prefill_joins = _joins_of_a_decode_iteration
    try:
        yield
    finally:
        core.prefill_joins = now


def _points(profile: Profile, n: int, tokens: Tokens, cv: float) -> AccuratePoints:
    return AccuratePoints.of_accurate(
        [profile], [tokens], out_cv=[cv], out_dist=["lognormal"], batch=[n], max_queue=[3 * n]
    )


def _model(profile: Profile, n: int, tokens: Tokens, cv: float, lam: float) -> tuple[float, float]:
    m = _points(profile, n, tokens, cv).metrics(np.array([lam]))
    return float(m.itl[0]), float(m.ttft[0])


def _emulated(
    profile: Profile, n: int, tokens: Tokens, cv: float, lam: float
) -> tuple[float, float]:
    m = int(tokens.out_tokens)
    spec = ServerSpec(
        profile,
        Poisson(lam * MS_PER_MIN),
        batch_size=n,
        max_queue=2 * n,  # K = 3N
        service="deterministic",
        input_tokens=Fixed(int(tokens.in_tokens)),
        output_tokens=Fixed(m) if cv == 0.0 else LogNormal(float(m), cv),
    )
    sim = Simulation({"s": spec}, seed=17)
    t_end = REQUESTS / lam
    sim.run_until(1.5 * t_end)
    rec = sim.records("s")
    lo, hi = np.searchsorted(rec.arrival, [0.05 * t_end, t_end])
    ok = (rec.reason[lo:hi] == 0) & np.isfinite(rec.completion[lo:hi])
    first, done = rec.first_token[lo:hi][ok], rec.completion[lo:hi][ok]
    steps = rec.output_tokens[lo:hi][ok] - 1.0
    return float((done - first).sum() / steps.sum()), float((first - rec.arrival[lo:hi][ok]).mean())


def _pct(model: float, sim: float) -> str:
    return f"{100.0 * (model / sim - 1.0):+.1f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    rows = []
    for label, profile, n, tokens, cv in CASES:
        mu = float(_points(profile, n, tokens, cv).mu_n[0])
        for rho in RHOS:
            lam = rho * mu
            itl, ttft = _model(profile, n, tokens, cv, lam)
            with rule_before():
                itl_0, ttft_0 = _model(profile, n, tokens, cv, lam)
            itl_s, ttft_s = _emulated(profile, n, tokens, cv, lam)
            rows.append(
                [
                    label,
                    f"{rho:g}",
                    f"{itl_s:.2f}",
                    f"{itl:.2f} ({_pct(itl, itl_s)})",
                    f"{itl_0:.2f} ({_pct(itl_0, itl_s)})",
                    f"{ttft_s:.1f}",
                    f"{ttft:.1f} ({_pct(ttft, ttft_s)})",
                    f"{ttft_0:.1f} ({_pct(ttft_0, ttft_s)})",
                ]
            )
    head = ["server", "ρ", "ITL sim ms", "ITL model", "ITL rule before", "TTFT sim ms"]
    print_table([*head, "TTFT model", "TTFT rule before"], rows, args.markdown)
    print()
    _, profile, n, tokens, cv = CASES[1]
    pts = _points(profile, n, tokens, cv)
    nan = np.full(1, np.nan)
    slo = SloArrays(np.full(1, ITL_TARGET), nan, nan, nan, nan, nan, nan, nan)
    top = sizing.HIGH_FRACTION * float(pts.mu_n[0])
    ends, first = float(sizing._size(pts, slo).rate[0]), float(sizing.size(pts, slo).rate[0])
    itl_mid = _emulated(profile, n, tokens, cv, 0.6 * top)[0]
    itl_first = _emulated(profile, n, tokens, cv, first)[0]
    model_first = float(pts.itl(np.array([first]))[0])
    head = ["ITL target ms", "λ* between the ends / top", "λ* first crossing / top"]
    head += ["ITL sim at 0.6 top", "ITL sim at first crossing", "ITL model there"]
    cells = [f"{ITL_TARGET:g}", f"{ends / top:.3f}", f"{first / top:.3f}"]
    cells += [f"{itl_mid:.2f}", f"{itl_first:.2f}", f"{model_first:.2f}"]
    print_table(head, [cells], args.markdown)


if __name__ == "__main__":
    main()
