"""Least-squares fits of profile parameters from measurements (pure).

- :func:`fit_batch`: the batch kind's τ(b) = α + β·b from executions of known batch sizes
  (Triton's per-batch-size statistics, or client timings at concurrency 1).
- :func:`request_overhead`: what a request adds to its batch beyond its items' cost: the β of
  batches Triton formed from single-item requests minus the β of one b-item request.
- :func:`capacity`: the most one instance serves, N / τ(N) (full batches back to back).
- :func:`fit_g2`: an LLM server's G2 parameters (α, β, γ) from ITL and TTFT observations at
  known batch sizes and request shapes. Both are linear in (α, β, γ) (docs/model.md, "Profiles",
  G2)::

      T(b)       = α + b·(β·t_c + γ·t_m),  t_c = (in + out)/(out + 1),  t_m = in + out/2
      ITL(b)     = T(b) + β + γ·(in + out/2)          (a decode iteration)
      TTFT(b)    = T(b) + (β + γ)·in                  (the prefill iteration, no queueing)

Every fit is weighted least squares (weights: how many executions or requests a row
averages), with the standard error of each parameter, R² and the RMSE, so a user can judge it.
A fit whose parameters come out negative is reported as such (``ok`` False, with the reason);
it is never clipped silently.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import InfernoError
from ..units import MS_PER_S

__all__ = [
    "BatchPoint",
    "FitError",
    "LinearFit",
    "LlmPoint",
    "Overhead",
    "ProfileFit",
    "capacity",
    "fit_batch",
    "fit_g2",
    "fit_linear",
    "request_overhead",
]

F = NDArray[np.float64]


class FitError(InfernoError, ValueError):
    """The measurements cannot determine the parameters (too few, or all at one batch size).

    Also a :class:`ValueError`, as it was before it joined the tree."""


@dataclass(frozen=True, slots=True)
class BatchPoint:
    """Executions of batch size ``batch`` took ``ms`` on average; ``weight``: how many."""

    batch: float
    ms: float
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class LlmPoint:
    """An LLM server measured at ``batch`` concurrent requests of ``in_tokens``/``out_tokens``:
    its mean inter-token latency and time to first token (ms, no queueing)."""

    batch: float
    in_tokens: float
    out_tokens: float
    itl_ms: float | None = None
    ttft_ms: float | None = None
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class LinearFit:
    """Weighted least squares y ≈ X·θ."""

    names: tuple[str, ...]
    params: tuple[float, ...]
    stderr: tuple[float, ...]
    r2: float
    rmse: float  # weighted root mean square residual, in y's unit
    n: int  # rows

    def value(self, name: str) -> float:
        return self.params[self.names.index(name)]

    def to_json(self) -> dict[str, Any]:
        return {
            "params": dict(zip(self.names, self.params, strict=True)),
            "stderr": {k: _finite(v) for k, v in zip(self.names, self.stderr, strict=True)},
            "r2": _finite(self.r2),
            "rmse": _finite(self.rmse),
            "points": self.n,
        }


@dataclass(frozen=True, slots=True)
class ProfileFit:
    """A fitted profile's parameters, the fit behind them, and whether they are usable."""

    kind: str
    fit: LinearFit
    ok: bool
    problems: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            **self.fit.to_json(),
            "ok": self.ok,
            "problems": list(self.problems),
        }


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def fit_linear(x: F, y: F, w: F | None, names: Sequence[str]) -> LinearFit:
    """Weighted least squares with standard errors from the residual variance."""
    n, p = x.shape
    if n < p:
        raise FitError(f"{n} measurement(s) cannot determine {p} parameters ({', '.join(names)})")
    weights = np.ones(n) if w is None else np.asarray(w, dtype=np.float64)
    if np.any(weights < 0) or not np.all(np.isfinite(weights)) or weights.sum() <= 0:
        raise FitError("weights must be finite and ≥ 0, with a positive total")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise FitError("measurements must be finite numbers")
    sw = np.sqrt(weights)
    xw, yw = x * sw[:, None], y * sw
    if np.linalg.matrix_rank(xw) < p:
        raise FitError(
            f"the measurements do not determine {', '.join(names)}: vary the batch size "
            "(and for LLM servers the request shape)"
        )
    theta, *_ = np.linalg.lstsq(xw, yw, rcond=None)
    resid = yw - xw @ theta
    sse = float(resid @ resid)
    dof = n - p
    total_w = float(weights.sum())
    mean_y = float((weights * y).sum() / total_w)
    sst = float((weights * (y - mean_y) ** 2).sum())
    r2 = 1.0 - sse / sst if sst > 0 else (1.0 if sse == 0 else math.nan)
    if dof > 0:
        # Var(y_i) = σ²/w_i (a row averages w_i measurements); σ² per unit weight
        cov = sse / dof * np.linalg.inv(xw.T @ xw)
        stderr = tuple(float(math.sqrt(max(v, 0.0))) for v in np.diag(cov))
    else:
        stderr = tuple(math.nan for _ in range(p))
    return LinearFit(
        names=tuple(names),
        params=tuple(float(t) for t in theta),
        stderr=stderr,
        r2=r2,
        rmse=math.sqrt(sse / total_w),
        n=n,
    )


def _judge(kind: str, fit: LinearFit, positive: Sequence[str], nonneg: Sequence[str]) -> ProfileFit:
    problems = [f"{k} = {fit.value(k):.4g} ≤ 0" for k in positive if not fit.value(k) > 0]
    problems += [f"{k} = {fit.value(k):.4g} < 0" for k in nonneg if fit.value(k) < 0]
    return ProfileFit(kind, fit, not problems, tuple(problems))


def fit_batch(points: Sequence[BatchPoint]) -> ProfileFit:
    """α and β of τ(b) = α + β·b. Needs two batch sizes at least."""
    rows = [p for p in points if p.weight > 0]
    if len({p.batch for p in rows}) < 2:
        raise FitError("the batch kind needs executions of at least two batch sizes")
    b = np.array([p.batch for p in rows], dtype=np.float64)
    y = np.array([p.ms for p in rows], dtype=np.float64)
    w = np.array([p.weight for p in rows], dtype=np.float64)
    x = np.column_stack([np.ones_like(b), b])
    fit = fit_linear(x, y, w, ("alpha", "beta"))
    return _judge("batch", fit, ("alpha",), ("beta",))


@dataclass(frozen=True, slots=True)
class Overhead:
    """A request's own cost in a batch Triton formed: ``ms`` = β(single-item requests) −
    β(one b-item request), with its standard error (NaN when a fit has no residual degrees of
    freedom). ``items`` is the b-item fit, ``single`` the single-item one."""

    ms: float
    stderr: float
    single: LinearFit
    items: LinearFit

    @property
    def relative(self) -> float:
        """The overhead as a fraction of the per-item β."""
        beta = self.items.value("beta")
        return self.ms / beta if beta > 0 else math.nan

    def to_json(self) -> dict[str, Any]:
        return {
            "ms": self.ms,
            "stderr": _finite(self.stderr),
            "relative": _finite(self.relative),
            "singleBeta": self.single.value("beta"),
            "itemBeta": self.items.value("beta"),
            "itemAlpha": self.items.value("alpha"),
        }


def request_overhead(single: ProfileFit, items: ProfileFit) -> Overhead:
    """The per-request overhead: τ(b requests of one item) = α + (β_item + o)·b while one
    request of b items costs about α + β_item·b, so o = β_single − β_item."""
    s, i = single.fit, items.fit
    ms = s.value("beta") - i.value("beta")
    se = math.hypot(s.stderr[s.names.index("beta")], i.stderr[i.names.index("beta")])
    return Overhead(ms, se, s, i)


def capacity(alpha: float, beta: float, max_batch: int) -> float:
    """Requests per second one instance serves at most: full batches back to back,
    N / τ(N) with τ in ms (the model's μ(N); ``inferno analyze`` reports 0.999 of it)."""
    tau = alpha + beta * max_batch
    if max_batch < 1 or not tau > 0:
        return math.nan
    return max_batch / tau * MS_PER_S


def g2_design(batch: F, in_tokens: F, out_tokens: F) -> tuple[F, F]:
    """Rows of the ITL and TTFT equations of G2 in (α, β, γ)."""
    t_c = (in_tokens + out_tokens) / (out_tokens + 1.0)
    t_m = in_tokens + out_tokens / 2.0
    ones = np.ones_like(batch)
    itl = np.column_stack([ones, batch * t_c + 1.0, batch * t_m + in_tokens + out_tokens / 2.0])
    ttft = np.column_stack([ones, batch * t_c + in_tokens, batch * t_m + in_tokens])
    return itl, ttft


def fit_g2(points: Sequence[LlmPoint]) -> ProfileFit:
    """α, β and γ of G2 from every ITL and TTFT given."""
    xs: list[F] = []
    ys: list[float] = []
    ws: list[float] = []
    for p in points:
        if p.weight <= 0:
            continue
        itl, ttft = g2_design(
            np.array([p.batch], dtype=np.float64),
            np.array([p.in_tokens], dtype=np.float64),
            np.array([p.out_tokens], dtype=np.float64),
        )
        if p.itl_ms is not None:
            xs.append(itl[0])
            ys.append(p.itl_ms)
            ws.append(p.weight)
        if p.ttft_ms is not None and p.in_tokens > 0:
            xs.append(ttft[0])
            ys.append(p.ttft_ms)
            ws.append(p.weight)
    if not xs:
        raise FitError("no ITL or TTFT measurements")
    fit = fit_linear(np.vstack(xs), np.array(ys), np.array(ws), ("alpha", "beta", "gamma"))
    return _judge("G2", fit, ("alpha",), ("beta", "gamma"))
