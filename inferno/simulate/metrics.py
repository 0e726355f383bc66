"""The emulated metrics source: what a monitoring stack would report, not the ground truth.

At the end of each control period a policy asks :meth:`MetricsSource.measure` about a server.
The answer is taken from :meth:`~inferno.emulator.Simulation.window` over the last ``window``
seconds (clipped at the start of the run), as a Prometheus ``rate(...[window])`` would:

- ``arrival_rate``: arrivals in the window / its length, requests per minute;
- ``in_tokens``, ``out_tokens``: mean token counts of the requests that arrived in it (when none
  arrived: the last value measured, else the scenario's mean);
- ``utilisation``: busy / ready replicas (time averages: a replica is busy while it serves at
  least one request) — what a GPU-utilisation HPA sees;
- ``batch_utilisation``: requests in service / (ready replicas × batch size);
- ``held``: requests held (waiting + in service), a time average — what a queue-length scaler
  (KEDA on the serving engine's running + waiting gauges) sees;
- ``backlog``: requests waiting (not yet started), a time average — Triton's pending-request
  gauge, which the Inferno policy drains.

The arrival rate, the two token means and ``held`` (``backlog`` shares ``held``'s) are each
multiplied by their own log-normal factor exp(σZ − σ²/2) (mean one, relative standard deviation
≈ σ = ``noise``); the utilisations, ratios of replica time, are not. The factors come from a
generator per server keyed by the seed and the server name, and each call draws the same number
of them, so two policies that measure the same servers at the same periods see the same noise.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

import numpy as np

from ..emulator import Simulation, Window, name_key
from ..emulator.records import TOKEN_BUCKETS
from ..prom.lengths import MIN_REQUESTS, LengthFit, fit_lengths
from ..system import Load
from ..units import MS_PER_S

__all__ = ["Measurement", "MetricsSource", "fit_histogram"]

logger = logging.getLogger(__name__)

_NOISE_STREAM = 0x6E6F697365  # "noise": keeps these draws apart from the emulator's


@dataclass(frozen=True, slots=True)
class Measurement:
    """One server's measured metrics over [t0, t1) (ms)."""

    server: str
    t0: float
    t1: float
    arrival_rate: float  # req/min
    in_tokens: float
    out_tokens: float
    utilisation: float  # busy / ready (NaN when no replica was ready)
    batch_utilisation: float  # in service / (ready × batch)
    held: float  # requests waiting + in service (time average)
    backlog: float  # requests waiting (time average)
    ready: float  # ready replicas (time average; not noisy)
    window: Window  # the ground truth it was measured from
    #: the output and input lengths' CV and family, fitted from the window's token histograms
    #: as the collector fits the serving engine's (:mod:`inferno.prom.lengths`; None: no fit)
    lengths: LengthFit | None = None
    in_lengths: LengthFit | None = None

    @property
    def load(self) -> Load:
        out, inp = self.lengths, self.in_lengths
        return Load(
            self.arrival_rate,
            self.in_tokens,
            self.out_tokens,
            out_tokens_cov=None if out is None else out.cv,
            out_tokens_dist=None if out is None else out.family,
            in_tokens_cov=None if inp is None else inp.cv,
            in_tokens_dist=None if inp is None else inp.family,
        )


def fit_histogram(
    cumulative: tuple[int, ...], mean: float, cap: int | None = None
) -> LengthFit | None:
    """The collector's fit of a window's token histogram (None: nothing counted, or no fit)."""
    if not cumulative or not mean > 0:
        return None
    bounds = (*TOKEN_BUCKETS, math.inf)
    return fit_lengths(list(zip(bounds, (float(c) for c in cumulative), strict=True)), mean, cap)


def _or(value: float, fallback: float) -> float:
    return value if math.isfinite(value) else fallback


class MetricsSource:
    """Noisy, windowed measurements of a simulation's servers.

    ``batch_of(server)`` gives the server's current batch size; ``tokens`` the fallback mean
    (input, output) tokens per server when a window saw no arrivals; ``max_output_tokens`` the
    servers' caps (their Deployments' annotation), with which the output lengths are fitted as
    the deployed collector fits them.
    """

    def __init__(
        self,
        sim: Simulation,
        *,
        window_s: float,
        noise: float,
        seed: int,
        batch_of: Callable[[str], int],
        tokens: Mapping[str, tuple[float, float]],
        max_output_tokens: Mapping[str, int] | None = None,
    ) -> None:
        if not window_s > 0:
            raise ValueError(f"window must be > 0 s, got {window_s}")
        if not 0 <= noise <= 1:
            raise ValueError(f"noise must be in [0, 1], got {noise}")
        self.sim = sim
        self.window_ms = window_s * MS_PER_S
        self.noise = noise
        self._batch_of = batch_of
        self._last_tokens = {name: tuple(v) for name, v in tokens.items()}
        self._caps = dict(max_output_tokens or {})
        self._rngs = {
            name: np.random.default_rng(
                np.random.SeedSequence(seed, spawn_key=(name_key(name), _NOISE_STREAM))
            )
            for name in sim.servers
        }

    def _factors(self, server: str) -> list[float]:
        z = self._rngs[server].standard_normal(4)
        s = self.noise
        return [float(v) for v in np.exp(s * z - 0.5 * s * s)]

    def measure(
        self, server: str, t_ms: float | None = None, *, lengths_window_s: float | None = None
    ) -> Measurement:
        """The server's metrics over the window ending at ``t_ms`` (default: now); the lengths'
        histograms fitted over the last ``lengths_window_s`` instead where the window counts
        too few requests, as the deployed collector does (``INFERNO_LENGTHS_WINDOW``)."""
        t1 = self.sim.now if t_ms is None else float(t_ms)
        t0 = max(0.0, t1 - self.window_ms)
        f_rate, f_in, f_out, f_held = self._factors(server)
        if not t1 > 0:
            raise ValueError("nothing to measure at t = 0")
        w = self.sim.window(server, t0, t1)
        rate = w.arrival_rate_per_min * f_rate
        last_in, last_out = self._last_tokens.get(server, (0.0, 0.0))
        n_in = w.input_tokens_mean * f_in if math.isfinite(w.input_tokens_mean) else last_in
        n_out = w.output_tokens_mean * f_out if math.isfinite(w.output_tokens_mean) else last_out
        self._last_tokens[server] = (n_in, n_out)
        cap = self._caps.get(server)
        if w.ready > 0:
            util = min(w.busy / w.ready, 1.0)
            in_service = max(w.in_flight - w.queue, 0.0)
            batch_util = in_service / (w.ready * max(self._batch_of(server), 1))
        else:
            util = batch_util = math.nan
        m = Measurement(
            server=server,
            t0=t0,
            t1=t1,
            arrival_rate=rate,
            in_tokens=n_in,
            out_tokens=n_out,
            utilisation=util,
            batch_utilisation=batch_util,
            held=w.in_flight * f_held,
            backlog=w.queue * f_held if math.isfinite(w.queue) else 0.0,
            ready=w.ready,
            window=w,
            # the histograms fitted with the window's own means: a serving engine's token
            # counters and histograms count the same requests, so the noise on the reported
            # means does not reach the fit
            lengths=fit_histogram(w.output_tokens_le, _or(w.output_tokens_mean, n_out), cap),
            in_lengths=fit_histogram(w.input_tokens_le, _or(w.input_tokens_mean, n_in)),
        )
        return self._widened(m, lengths_window_s)

    def _widened(self, m: Measurement, lengths_window_s: float | None) -> Measurement:
        """``m`` with each histogram that counts fewer than
        :data:`~inferno.prom.lengths.MIN_REQUESTS` fitted over the last ``lengths_window_s``
        (with its mean over the same) where that is longer."""
        w = m.window
        short = [
            len(le) == 0 or le[-1] < MIN_REQUESTS for le in (w.input_tokens_le, w.output_tokens_le)
        ]
        if lengths_window_s is None or not any(short):
            return m
        t0 = max(0.0, m.t1 - lengths_window_s * MS_PER_S)
        if not t0 < m.t0:
            return m
        wide = self.sim.window(m.server, t0, m.t1)
        in_lengths, lengths = m.in_lengths, m.lengths
        if short[0] and m.in_tokens > 0 and math.isfinite(wide.input_tokens_mean):
            in_lengths = fit_histogram(wide.input_tokens_le, wide.input_tokens_mean)
        if short[1] and math.isfinite(wide.output_tokens_mean):
            lengths = fit_histogram(
                wide.output_tokens_le, wide.output_tokens_mean, self._caps.get(m.server)
            )
        return replace(m, lengths=lengths, in_lengths=in_lengths)

    def loads(self, servers: Iterable[str], t_ms: float | None = None) -> dict[str, Load]:
        """The measured load of each server (what the Inferno collector would report)."""
        return {name: self.measure(name, t_ms).load for name in servers}
