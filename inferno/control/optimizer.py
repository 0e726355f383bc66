"""The optimizer's work for one request, without HTTP: :class:`Optimizer`.

It reads the static data (:class:`~inferno.control.static_data.StaticData`), validates the
collected servers and classes (:func:`~inferno.control.optimize.prepare`: a bad server is left
out with its reason, the rest are decided), tunes the profiles from the observations when there
are any (:class:`~inferno.control.tuner.Tuner`) and solves
(:func:`~inferno.control.optimize.solve_prepared`). The two failures it raises are classified
for the caller: :class:`StaticDataError` (our configuration: the service answers 503) and
:class:`~inferno.errors.InputError` naming the request (the caller's data: 400).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..errors import InfernoError, InputError
from ..solver import SizingMemo
from ..system import PerformanceModel, System
from ..tuning import PairKey, Theta, TuningOptions, TuningReport
from .optimize import OptimizeResult, prepare, solve_prepared
from .static_data import StaticData
from .tuner import Tuner

__all__ = ["Optimized", "Optimizer", "StaticDataError"]

logger = logging.getLogger(__name__)

REQUEST = "request"


class StaticDataError(InfernoError):
    """The static data (the ConfigMap) is missing or unusable: not the caller's fault."""


@dataclass(frozen=True)
class Optimized:
    result: OptimizeResult
    report: TuningReport | None  # None: nothing was tuned


def _section(enabled: bool, note: str) -> dict[str, Any]:
    """A tuning section with nothing tuned."""
    return {"enabled": enabled, "observations": [], "profiles": [], "notes": [note]}


class Optimizer:
    def __init__(
        self,
        static: StaticData,
        tuning: TuningOptions,
        *,
        tuning_enabled: bool = True,
        gpu_node_label: str = "nvidia.com/gpu.product",
        model: str = "inferno",
        memo: SizingMemo | None = None,
    ) -> None:
        """``model``: the performance model when the static optimizer data names none
        (``INFERNO_MODEL``: inferno or accurate). ``memo``: the candidates' sizing kept across
        requests (the same answers for the same servers, bit for bit; None: every request sizes
        everything)."""
        self.memo = memo
        self.model = PerformanceModel(model).value
        self.static = static
        self.tuner = Tuner(tuning, enabled=tuning_enabled)
        self.gpu_node_label = gpu_node_label

    def docs(self) -> dict[str, Any]:
        try:
            return self.static.get()
        except InputError as exc:
            raise StaticDataError(f"static data: {exc}") from None

    def run(
        self,
        servers: Sequence[Mapping[str, Any]],
        service_classes: Sequence[Mapping[str, Any]],
        observations: Mapping[str, Any] | None = None,
        tuner_state: Mapping[str, Any] | None = None,
    ) -> Optimized:
        """Decide; ``tuner_state``: the filters the controller kept, restored when this
        optimizer's tuner has none (after a restart)."""
        docs = self.docs()
        restore_note = ""
        if tuner_state is not None and self.tuner.enabled:
            restore_note = self.tuner.restore(tuner_state)
            if restore_note:
                logger.warning("%s", restore_note)
        try:
            prepared = prepare(
                docs,
                [dict(s) for s in servers],
                [dict(c) for c in service_classes],
                origin=str(self.static.path),
                request=REQUEST,
                model=self.model,
            )
        except InputError as exc:
            if exc.source != REQUEST:  # the static data: our configuration
                raise StaticDataError(f"static data: {exc}") from None
            raise
        tuned, report, section = self._tune(prepared.system, servers, observations)
        result = solve_prepared(
            prepared, gpu_node_label=self.gpu_node_label, tuned=tuned, memo=self.memo
        )
        if section is not None:
            for p in section["profiles"]:
                key = (p["model"], p["accelerator"])
                p["applied"] = key in result.applied
                p["fallback"] = result.fallbacks.get(key)
            if restore_note:
                section["notes"] = [restore_note, *section["notes"]]
            result = replace(result, tuning=section)
        if self.tuner.enabled and self.tuner.state.filters:
            result = replace(result, tuner_state=self.tuner.snapshot())
        return Optimized(result, report)

    def _tune(
        self,
        system: System,
        servers: Sequence[Mapping[str, Any]],
        observations: Mapping[str, Any] | None,
    ) -> tuple[dict[PairKey, Theta] | None, TuningReport | None, dict[str, Any] | None]:
        """The tuned parameters, the report and the start of the answer's tuning section (None,
        None, None without observations)."""
        if observations is None:
            return None, None, None
        if not self.tuner.enabled:
            off = "tuning is disabled (INFERNO_TUNING_ENABLED=false): the base profiles are used"
            return None, None, _section(False, off)
        try:
            tuned, report, notes = self.tuner.step(system, observations, servers)
        except Exception as exc:  # tuning must never cost the solve: fall back to the base
            logger.exception("tuning failed; the base profiles are used")
            why = f"tuning failed ({type(exc).__name__}: {exc}): the base profiles are used"
            return None, None, _section(True, why)
        section = {"enabled": True, **report.to_json()}
        section["notes"] = [*notes, *section["notes"]]
        return tuned, report, section
