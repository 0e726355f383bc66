"""The accurate model: LLM latency predicted as iteration-level continuous batching behaves.

:class:`AccuratePoints` is an :class:`~inferno.model.points.OperatingPoints` whose LLM rows (G0–G3)
are evaluated by the accurate model of :mod:`._accurate_core` — deterministic iterations, joins
at iteration boundaries, prefill iterations that stall the batch (G1, G2), the output-length
distribution through its SCV, and a two-moment-scaled queue — instead of the birth-death
chain; batch-kind rows keep the base model (Triton's bulk model). Everything sizing and the
quantile helpers use (``metrics`` with ``wait_beyond``, ``subset``, ``response_time``,
``response_key``, ``mu_1``/``mu_n``) is provided, so :func:`inferno.model.sizing.size`,
:mod:`inferno.model.quantiles` and the solver take it unchanged. The method: ``docs/model.md``,
"Accurate mode".
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
from numpy.typing import NDArray

from . import _accurate_composition as composition
from . import _accurate_core as core
from ._accurate_build import make_block
from ._accurate_tails import response_survival, ttft_survival, wait_survival
from ._blocks import _cut
from .length_spread import LengthSpread
from .points import Metrics, OperatingPoints, batch_and_queue, chain_mu_1
from .profile_arrays import ProfileArrays, arrays_of, optional_array
from .profiles import Kind, Profile, Tokens

F = NDArray[np.float64]
Idx = NDArray[np.intp]

__all__ = [
    "DEFAULT_OUT_CV",
    "LENGTH_FAMILIES",
    "MODELS",
    "AccuratePoints",
    "AccurateResponse",
    "build_points",
    "capacities",
    "lognormal_mask",
]

logger = logging.getLogger(__name__)

#: the models a caller can choose: Inferno's chain, or this module's
MODELS = ("inferno", "accurate")
#: the output-length coefficient of variation assumed when the data gives none: exponential
#: lengths, the chain's own assumption (fixed lengths would be 0)
DEFAULT_OUT_CV = 1.0
#: the output lengths' families the accurate model's service distribution takes (the first is
#: the default): gamma — exact for exponential lengths, and fixed ones at CV 0 — or lognormal
LENGTH_FAMILIES = ("gamma", "lognormal")


def lognormal_mask(families: Sequence[str | None]) -> NDArray[np.bool_]:
    """Per point, whether its lengths' family (one of :data:`LENGTH_FAMILIES`, None: the
    default) is lognormal."""
    for f in families:
        if f is not None and f not in LENGTH_FAMILIES:
            known = ", ".join(LENGTH_FAMILIES)
            raise ValueError(f"length family must be one of {known}, got {f!r}")
    return np.array([f == "lognormal" for f in families], dtype=bool)


_KINDS = list(Kind)
_LLM = (Kind.G0, Kind.G1, Kind.G2, Kind.G3)
_LLM_CODES = [_KINDS.index(k) for k in _LLM]


def _state_take(st: core.BlockState, rows: Idx) -> core.BlockState:
    return core.BlockState(**{f.name: getattr(st, f.name)[rows] for f in fields(st)})


@dataclass(frozen=True, slots=True)
class AccurateResponse:
    """The response-time distribution of one LLM point in the accurate model."""

    state: core.BlockState  # one row

    def survival(self, t: Sequence[float] | F) -> F:
        ts = np.asarray(t, dtype=np.float64).ravel()
        st = _state_take(self.state, np.zeros(ts.size, dtype=np.intp))
        return response_survival(st, ts)


@dataclass(frozen=True, slots=True)
class _Pending:
    """A subset's block before it is taken: ``source.take(rows, width=width)``, done when the
    points are first evaluated. A subset of a subset takes straight from the first source (the
    same arrays: both are plain copies of rows and columns), so the solver's table of every
    candidate, subset again to the chosen ones, copies only what is evaluated."""

    source: core.AccurateBlock
    rows: Idx
    width: int

    def of(self, rows: Idx, *, same_width: bool) -> _Pending:
        """The subset ``rows`` of this one, with the width :meth:`AccurateBlock.take` gives."""
        n = self.source.n_batch[self.rows]
        width = int(n.max()) if same_width else int(n[rows].max())
        return _Pending(self.source, self.rows[rows], width)


class AccuratePoints(OperatingPoints):
    """Operating points whose LLM rows follow the accurate model (see the module docstring)."""

    def __init__(
        self,
        base: OperatingPoints,
        blocks: Sequence[tuple[Idx, core.AccurateBlock | _Pending]],
        mu_n: F,
    ) -> None:
        super().__init__(base._blocks, base.n_batch, base.n_max, base.mu_1, mu_n)
        self._base = base
        self._parts = list(blocks)
        self._taken: list[tuple[Idx, core.AccurateBlock]] | None = None
        llm = np.zeros(len(base), dtype=bool)
        for idx, _ in blocks:
            llm[idx] = True
        self._llm = llm
        other = np.flatnonzero(~llm)
        self._other = (other, base.subset(other)) if other.size else None
        self._place: tuple[Idx, Idx] | None = None
        #: the last rates' states: sizing asks for the means and then the wait's survival at the
        #: same rates, which need the same states
        self._memo: tuple[bytes, list[tuple[Idx, core.BlockState]], dict[str, F]] | None = None

    # --- construction -------------------------------------------------------------------------

    @classmethod
    def of_accurate(
        cls,
        profiles: Sequence[Profile],
        tokens: Sequence[Tokens],
        *,
        out_cv: Sequence[float | None] | None = None,
        out_dist: Sequence[str | None] | None = None,
        in_cv: Sequence[float | None] | None = None,
        in_dist: Sequence[str | None] | None = None,
        out_max: Sequence[float | None] | None = None,
        batch: Sequence[int | None] | None = None,
        max_queue: Sequence[int | None] | None = None,
        queue_factor: float | None = None,
    ) -> AccuratePoints:
        """Points from profile objects, as :meth:`OperatingPoints.of`, with each request shape's
        output-length coefficient of variation (None: :data:`DEFAULT_OUT_CV`) and family (one of
        :data:`LENGTH_FAMILIES`; None: gamma), its input lengths' (None: fixed), and the most
        output tokens a request gets (None: no cap)."""
        prof, in_tokens, out_tokens = arrays_of(profiles, tokens)
        lengths = LengthSpread.of(
            len(prof.kind),
            out_cv=optional_array(out_cv),
            out_lognormal=None if out_dist is None else lognormal_mask(out_dist),
            in_cv=optional_array(in_cv),
            in_lognormal=None if in_dist is None else lognormal_mask(in_dist),
            out_max=optional_array(out_max),
        )
        return cls.build_accurate(
            prof,
            in_tokens,
            out_tokens,
            lengths=lengths,
            batch=optional_array(batch),
            max_queue=optional_array(max_queue),
            queue_factor=queue_factor,
        )

    @classmethod
    def build_accurate(
        cls,
        prof: ProfileArrays,
        in_tokens: F,
        out_tokens: F,
        *,
        lengths: LengthSpread | None = None,
        batch: F | None = None,
        max_queue: F | None = None,
        queue_factor: float | None = None,
    ) -> AccuratePoints:
        """Points from arrays of shape (C,), as :meth:`OperatingPoints.build`, with the request
        lengths' spread per point (None: every point's default): the output lengths' CV (NaN:
        :data:`DEFAULT_OUT_CV`) and family, the input lengths' (NaN: fixed), and the most output
        tokens a request gets (NaN: no cap), with which the lengths are served capped, with the
        told mean and CV (:mod:`._lengths_capped`)."""
        base, blocks, mu_n = _built(
            prof,
            in_tokens,
            out_tokens,
            lengths=lengths,
            batch=batch,
            max_queue=max_queue,
            queue_factor=queue_factor,
        )
        return cls(base, blocks, mu_n)

    # --- evaluation ---------------------------------------------------------------------------

    def states(self, rate: F | float, *, detail: bool = True) -> list[tuple[Idx, core.BlockState]]:
        """The accurate model's state of every LLM block at the points' rates (/ms); without
        ``detail``, no service variance (what the latency distribution needs)."""
        lam = np.broadcast_to(np.asarray(rate, dtype=np.float64), self.n_batch.shape)
        return [(idx, composition.evaluate(blk, lam[idx], detail=detail)) for idx, blk in self._acc]

    def may_fall(self) -> NDArray[np.bool_]:
        """The LLM rows whose prefill iteration can be shorter than a decode iteration
        (:func:`._accurate_core.cheap_prefills`): more load, more of the iterations are
        prefills, and the ITL can fall as the rate grows."""
        out = np.zeros(len(self), dtype=bool)
        for idx, blk in self._acc:
            out[idx] = core.cheap_prefills(blk)
        return out

    itl_alone = True

    def itl(self, rate: F) -> F:
        """The mean ITL at ``rate`` (/ms): the batch's composition moves the queue only, so the
        LLM rows' ITL is the central chain's (:func:`._accurate_core.evaluate`, a quarter of
        the work of every metric of a G2 row whose lengths vary)."""
        lam = np.broadcast_to(np.asarray(rate, dtype=np.float64), self.n_batch.shape)
        out = np.full(len(self), np.nan)
        if self._other is not None:
            idx, pts = self._other
            out[idx] = pts.itl(lam[idx])
        for idx, blk in self._acc:
            out[idx] = core.evaluate(blk, lam[idx], detail=False).itl
        return out

    @property
    def _acc(self) -> list[tuple[Idx, core.AccurateBlock]]:
        """The LLM blocks (a subset's taken now, once: :class:`_Pending`)."""
        if self._taken is None:
            self._taken = [
                (idx, b.source.take(b.rows, width=b.width) if isinstance(b, _Pending) else b)
                for idx, b in self._parts
            ]
        return self._taken

    def metrics(self, rate: F | float, *, wait_beyond: F | None = None) -> Metrics:
        shape = self.n_batch.shape
        lam = np.array(np.broadcast_to(np.asarray(rate, dtype=np.float64), shape))
        beyond = None if wait_beyond is None else np.broadcast_to(wait_beyond, shape)
        states, means = self._at(lam)
        out = {name: v.copy() for name, v in means.items()}
        if beyond is not None:
            if self._other is not None:
                idx, pts = self._other
                out["wait_sf"][idx] = pts.metrics(lam[idx], wait_beyond=beyond[idx]).wait_sf
            for idx, st in states:
                b = beyond[idx]
                ask = np.isfinite(b)
                if ask.any():
                    sf = wait_survival(st, np.where(ask, b, 0.0))
                    out["wait_sf"][idx] = np.where(ask, sf, np.nan)
        return Metrics(**out)

    def _at(self, lam: F) -> tuple[list[tuple[Idx, core.BlockState]], dict[str, F]]:
        """The blocks' states and the means at the rates ``lam`` (of the points' shape): the
        last rates' are kept, since sizing and the quantile searches ask the same rates again."""
        key = lam.tobytes()
        if self._memo is None or self._memo[0] != key:
            states = self.states(lam, detail=False)
            self._memo = (key, states, self._means(lam, states))
        return self._memo[1], self._memo[2]

    def ttft_sf(self, rate: F, t: F, *, metrics: Metrics | None = None) -> F:
        """P(TTFT > ``t``) per point (NaN where ``t`` is NaN): for the LLM rows the first-token
        time depends on the occupancy an arrival finds (:func:`._accurate_tails.ttft_survival`);
        other rows as :meth:`OperatingPoints.ttft_sf`."""
        shape = self.n_batch.shape
        lam = np.array(np.broadcast_to(np.asarray(rate, dtype=np.float64), shape))
        at = np.broadcast_to(np.asarray(t, dtype=np.float64), shape)
        out = np.full(len(self), np.nan)
        if self._other is not None:
            idx, pts = self._other
            out[idx] = pts.ttft_sf(lam[idx], at[idx])
        for idx, st in self._at(lam)[0]:
            a = at[idx]
            ask = np.isfinite(a)
            if ask.any():
                out[idx] = np.where(ask, ttft_survival(st, np.where(ask, a, 0.0)), np.nan)
        return out

    def _means(self, lam: F, states: list[tuple[Idx, core.BlockState]]) -> dict[str, F]:
        """Every metric but ``wait_sf`` (NaN) at the rates ``lam``."""
        out = {name: np.full(len(self), np.nan) for name in Metrics.__dataclass_fields__}
        if self._other is not None:
            idx, pts = self._other
            m = pts.metrics(lam[idx])
            for name in out:
                out[name][idx] = getattr(m, name)
        if not states:
            return out
        rows = np.concatenate([idx for idx, _ in states])  # the blocks' rows, in block order

        def each(field: str) -> F:
            return np.concatenate([getattr(st, field) for _, st in states])

        wait, service = each("wait"), each("service")
        out["rate"][rows] = lam[rows]
        out["response"][rows] = wait + service
        out["service"][rows] = service
        out["wait"][rows] = wait
        out["ttft"][rows] = wait + each("first")
        for name in ("throughput", "held", "in_service", "utilization", "blocking", "itl"):
            out[name][rows] = each(name)
        return out

    def subset(self, idx: Idx, *, same_width: bool = False) -> AccuratePoints:
        idx = np.asarray(idx, dtype=np.intp)
        if self._place is None:
            block_of = np.full(len(self), -1, dtype=np.intp)
            row_of = np.zeros(len(self), dtype=np.intp)
            for k, (members, _) in enumerate(self._parts):
                block_of[members] = k
                row_of[members] = np.arange(members.size)
            self._place = (block_of, row_of)
        block_of, row_of = self._place
        blk, row = block_of[idx], row_of[idx]
        blocks = []
        for k, (_, b) in enumerate(self._parts):
            sel = np.flatnonzero(blk == k)
            if sel.size:
                whole = b if isinstance(b, _Pending) else _Pending(b, np.arange(len(b.n_batch)), 0)
                blocks.append((sel, whole.of(row[sel], same_width=same_width)))
        if self._other is None:  # every row is an LLM row: the chain's blocks are not needed
            base = OperatingPoints(
                [], self.n_batch[idx], self.n_max[idx], self.mu_1[idx], self.mu_n[idx]
            )
        else:
            base = self._base.subset(idx, same_width=same_width)
        return AccuratePoints(base, blocks, self.mu_n[idx])

    def response_time(self, i: int, rate: float) -> AccurateResponse:  # type: ignore[override]
        if not self._llm[i]:
            return self._base.response_time(i, rate)  # type: ignore[return-value]
        one = self.subset(np.array([i], dtype=np.intp))
        (_, st), *_ = one.states(np.array([rate]))
        return AccurateResponse(st)

    def response_key(self, i: int, rate: float) -> tuple[bool, float, int, bytes]:
        if not self._llm[i]:
            return self._base.response_key(i, rate)
        one = self.subset(np.array([i], dtype=np.intp))
        _, blk = one._acc[0]
        key = b"".join(np.ascontiguousarray(getattr(blk, f.name)).tobytes() for f in fields(blk))
        return False, rate, int(self.n_max[i]), key


def capacities(
    prof: ProfileArrays,
    in_tokens: F,
    out_tokens: F,
    *,
    lengths: LengthSpread | None = None,
    batch: F | None = None,
    max_queue: F | None = None,
    queue_factor: float | None = None,
) -> tuple[F, F, F]:
    """N, μ(1) and μ(N) of the points :meth:`AccuratePoints.build_accurate` would build from
    these arrays, the same numbers, without what only their evaluation needs (the chain's
    per-state arrays of the LLM rows, G2's batch composition: most of a build's cost): the
    bounds a lazy sizing leaves most candidates at (:mod:`inferno.solver.lazy_sizing`)."""
    n, queue = batch_and_queue(prof, out_tokens, batch, max_queue, queue_factor)
    mu_1 = chain_mu_1(prof, in_tokens, out_tokens)
    mu_n = np.empty(n.size)
    other = np.flatnonzero(~np.isin(prof.kind, _LLM_CODES))
    if other.size:  # the batch kind's rows: the chain is their model

        def cut(v: F | None) -> F | None:
            return None if v is None else v[other]

        chain = OperatingPoints.build(
            prof.take(other),
            in_tokens[other],
            out_tokens[other],
            batch=cut(batch),
            max_queue=cut(max_queue),
            queue_factor=queue_factor,
        )
        mu_n[other] = chain.mu_n
    blocks = _llm_blocks(
        prof, in_tokens, out_tokens, n, queue, lengths=lengths, composition_moments=False
    )
    for idx, blk in blocks:
        mu_n[idx] = core.capacity(blk)
    return n, mu_1, mu_n


def _built(
    prof: ProfileArrays,
    in_tokens: F,
    out_tokens: F,
    *,
    lengths: LengthSpread | None,
    batch: F | None,
    max_queue: F | None,
    queue_factor: float | None,
) -> tuple[OperatingPoints, list[tuple[Idx, core.AccurateBlock]], F]:
    """The chain's points (the batch kind's, and N and μ(1) of all), the LLM rows' accurate
    blocks, and μ(N) of every point (:meth:`AccuratePoints.build_accurate`)."""
    base = OperatingPoints.build(
        prof, in_tokens, out_tokens, batch=batch, max_queue=max_queue, queue_factor=queue_factor
    )
    n = base.n_batch
    blocks = _llm_blocks(prof, in_tokens, out_tokens, n, base.n_max - n, lengths=lengths)
    mu_n = base.mu_n.copy()
    for idx, blk in blocks:
        mu_n[idx] = core.capacity(blk)
    return base, blocks, mu_n


def _llm_blocks(
    prof: ProfileArrays,
    in_tokens: F,
    out_tokens: F,
    n: F,
    tail: F,
    *,
    lengths: LengthSpread | None,
    composition_moments: bool = True,
) -> list[tuple[Idx, core.AccurateBlock]]:
    """The LLM rows' accurate blocks, rows of one kind and similar N together (N: ``n``, the
    queue beyond it: ``tail``; ``composition_moments``: as :func:`._accurate_build.make_block`)."""
    c = n.size
    spread = LengthSpread.of(c) if lengths is None else lengths
    cv = np.where(np.isfinite(spread.out_cv), np.maximum(spread.out_cv, 0.0), DEFAULT_OUT_CV)
    logn = spread.out_lognormal
    in_v = np.where(np.isfinite(spread.in_cv), np.maximum(spread.in_cv, 0.0), 0.0)
    in_ln = spread.in_lognormal
    cap = spread.out_max
    told = np.isfinite(cap) & (cap > 0)
    cap = np.where(told, cap, np.nan) / np.maximum(out_tokens, 1e-300)  # over the mean
    blocks: list[tuple[Idx, core.AccurateBlock]] = []
    for kind in _LLM:
        members = np.flatnonzero(prof.kind == _KINDS.index(kind))
        if members.size == 0:
            continue
        members = members[np.argsort(n[members], kind="stable")]
        for idx in _cut(members, n[members]):
            params = prof.take(idx).kind_arrays(kind, in_tokens[idx], out_tokens[idx])
            blk = make_block(
                params,
                n[idx],
                tail[idx],
                cv[idx] ** 2,
                logn[idx],
                in_v[idx] ** 2,
                in_ln[idx],
                out_cap=cap[idx],
                composition_moments=composition_moments,
            )
            blocks.append((idx, blk))
    return blocks


def build_points(
    model: str,
    prof: ProfileArrays,
    in_tokens: F,
    out_tokens: F,
    *,
    lengths: LengthSpread | None = None,
    batch: F | None = None,
    max_queue: F | None = None,
    queue_factor: float | None = None,
    widths: F | None = None,
) -> OperatingPoints:
    """Operating points of the chosen model (``"inferno"``: the chain; ``"accurate"``, with the
    request lengths' spread per point). ``widths``: the chain's block widths
    (:meth:`OperatingPoints.build`; the chain only)."""
    if widths is not None and model != "inferno":
        raise ValueError(f"block widths are the chain model's, not {model!r}'s")
    if model == "accurate":
        return AccuratePoints.build_accurate(
            prof,
            in_tokens,
            out_tokens,
            lengths=lengths,
            batch=batch,
            max_queue=max_queue,
            queue_factor=queue_factor,
        )
    if model != "inferno":
        raise ValueError(f"model must be one of {', '.join(MODELS)}, got {model!r}")
    return OperatingPoints.build(
        prof,
        in_tokens,
        out_tokens,
        batch=batch,
        max_queue=max_queue,
        queue_factor=queue_factor,
        widths=widths,
    )
