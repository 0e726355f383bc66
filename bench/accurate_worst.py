"""The accurate mode's worst cells of ``bench/accurate_cost.py`` (``g2exp``: G2, exponential
output lengths, large batches), one replica at a time: where does the model's wait go wrong?

For each server, the accurate model's ``g2exp`` allocation (batch N, queue K − N, R replicas) is
taken and **one** replica is emulated at the server's rate / R (random routing thins a Poisson
stream into Poisson streams, so this is what each replica sees), deterministic iterations,
``--requests`` arrivals after a 5% warm-up. Printed side by side, model vs emulator: the
probability that an accepted arrival finds the batch full (it queues), the mean wait of those,
the mean wait and TTFT, the mean requests in the batch and the service time's mean and CV.

``--gamma-scale`` scales the profile's memory cost γ (0: an iteration's time depends on the
batch size only, not on its members' KV tokens) and ``--rate-scale`` the rate, so that the same
server can be compared at a similar congestion without the memory term.

Usage::

    python bench/accurate_worst.py [--servers A,B] [--requests 300000] [--cv 1]
                                   [--rate-scale 1] [--gamma-scale 1] [--markdown]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import replace

import numpy as np
from _tables import print_table  # bench/, first on sys.path when run as a script
from accurate_cost import WARMUP, Job, jobs_of, lengths, systems

from inferno.emulator import Fixed, Poisson, ServerSpec, Simulation
from inferno.model.accurate import AccuratePoints
from inferno.model.profiles import G2Profile, Tokens

#: the four g2exp servers the accurate allocation missed in bench/README.md
WORST = ("Bronze-mixtral_8_7b", "Free-llama_70b", "Free-llama_7b", "Free-mixtral_8_7b")


def compare(job: Job, rate_rpm: float, cov: float, requests: int) -> list[str]:
    """One replica of ``job`` at ``rate_rpm``: the model's and the emulator's numbers."""
    lam = rate_rpm / 60_000.0
    tokens = Tokens(job.load.in_tokens, job.load.out_tokens)
    points = AccuratePoints.of_accurate(
        [job.profile], [tokens], out_cv=[cov], batch=[job.batch], max_queue=[job.max_queue]
    )
    ((_, st),) = points.states(np.array([lam]))
    spec = ServerSpec(
        job.profile,
        Poisson(rate_rpm),
        replicas=1,
        batch_size=job.batch,
        max_queue=job.max_queue,
        input_tokens=Fixed(round(job.load.in_tokens)),
        output_tokens=lengths(replace(job.load, out_tokens_cov=cov)),
        router="random",
        startup_delay_ms=0.0,
        service="deterministic",
    )
    sim = Simulation({"s": spec}, seed=job.seed)
    t_end = requests / lam
    sim.run_until(1.3 * t_end)  # the stragglers of the window finish (K − N is finite)
    rec = sim.records("s")
    done = (rec.reason == 0) & np.isfinite(rec.completion)
    starts, ends = np.sort(rec.start[done]), np.sort(rec.completion[done])
    lo = int(np.searchsorted(rec.arrival, WARMUP * t_end))
    hi = int(np.searchsorted(rec.arrival, t_end))
    ok = done[lo:hi]
    arrival = rec.arrival[lo:hi]
    # requests in the batch when each one arrived (its own start is after its arrival)
    found = np.searchsorted(starts, arrival, side="left") - np.searchsorted(ends, arrival, "right")
    full = (found >= job.batch)[ok]
    wait = (rec.start[lo:hi] - arrival)[ok]
    ttft = (rec.first_token[lo:hi] - arrival)[ok]
    service = (rec.completion[lo:hi] - rec.start[lo:hi])[ok]
    in_batch = float(np.mean(np.minimum(found[ok], job.batch)))
    queued = float(wait[full].mean()) if full.any() else 0.0
    model_cv = math.sqrt(float(st.service_var[0])) / float(st.service[0])
    return [
        job.key[2],
        f"{job.batch}",
        f"{rate_rpm:.1f}",
        f"{float(st.p_queue[0]):.4f} / {float(full.mean()):.4f}",
        f"{float(st.queue_mean[0]):,.0f} / {queued:,.0f}",
        f"{float(st.wait[0]):,.0f} / {float(wait.mean()):,.0f}",
        f"{float(st.wait[0] + st.first[0]):,.0f} / {float(ttft.mean()):,.0f}",
        f"{float(st.in_service[0]):.2f} / {in_batch:.2f}",
        f"{float(st.service[0]):,.0f} / {float(service.mean()):,.0f}",
        f"{model_cv:.2f} / {float(service.std() / service.mean()):.2f}",
    ]


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--servers", default=",".join(WORST))
    ap.add_argument("--requests", type=int, default=300_000, help="arrivals per server")
    ap.add_argument("--cv", type=float, default=1.0, help="output-length CV emulated and modelled")
    ap.add_argument("--rate-scale", type=float, default=1.0)
    ap.add_argument("--gamma-scale", type=float, default=1.0)
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    t0 = time.perf_counter()
    names = [s for s in args.servers.split(",") if s]
    system = systems(["g2exp"])["g2exp"]
    jobs, _ = jobs_of("g2exp", system, "accurate", args.requests, False)
    by_name = {j.key[2]: j for j in jobs}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise SystemExit(f"not allocated in g2exp: {', '.join(unknown)}")
    rows = []
    for name in names:
        job = by_name[name]
        assert isinstance(job.profile, G2Profile)  # g2exp is all G2
        profile = replace(job.profile, gamma=job.profile.gamma * args.gamma_scale)
        rate = job.load.arrival_rate / job.replicas * args.rate_scale
        rows.append(compare(replace(job, profile=profile), rate, args.cv, args.requests))
    print(
        f"one replica each, {args.requests:,} arrivals, output-length CV {args.cv:g}, "
        f"γ × {args.gamma_scale:g}, rate × {args.rate_scale:g}; model / emulated "
        f"({time.perf_counter() - t0:.0f} s)\n"
    )
    head = ["server", "N", "rpm", "P(queue)", "queued wait ms", "wait ms", "TTFT ms", "in batch"]
    head += ["service ms", "service CV"]
    print_table(head, rows, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
