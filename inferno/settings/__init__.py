"""One settings object, read once from the environment (and command-line overrides): a tree of
option groups.

``Settings`` has one field per group — :class:`ServiceOptions` (``service``),
:class:`Endpoints` (``ports``), :class:`SecurityOptions` (``security``),
:class:`LeaderOptions` (``leader``), :class:`PrometheusOptions` (``prometheus``),
:class:`TuningOptions` (``tuning``), :class:`PlanOptions` (``plan``),
:class:`PolicyOptions` (``policy``), :class:`OptimizerOptions` (``optimizer``) and
:class:`MigApplyOptions` (``mig``). Every field of
a group names its environment variable and says what it means (``metadata``: ``env`` and
``doc``); the group checks its own values when it is made, so a group given in code is checked
exactly like one read from the environment, and a bad value raises :class:`SettingsError` naming
the variable, the value and what was expected: a misconfigured pod fails at start-up, loudly.

Environment names follow the Go original's where it had one (``INFERNO_CONTROL_PERIOD``,
``COLLECTOR_PORT``, ``INFERNO_PORT`` for the optimizer...). The tuning and plan groups are the
very objects the tuner (:mod:`inferno.tuning`) and the planner (:mod:`inferno.cluster.plan`) take.

The modules, by topic: :mod:`._group` (what every group shares), :mod:`.service` (the service,
its endpoints, security and leader election), :mod:`.prometheus`, :mod:`.tuning`,
:mod:`.control` (the optimizer's model, the control policy, the plan) and :mod:`.environment`
(the tree and its reading), :mod:`.mig` (applying MIG geometries to nodes).
"""

from __future__ import annotations

from ._group import SettingsError
from .control import MODELS, OptimizerOptions, PlanOptions, PolicyOptions
from .environment import Settings, variables
from .mig import MigApplyOptions
from .prometheus import PrometheusOptions
from .service import Endpoints, LeaderOptions, SecurityOptions, ServiceOptions
from .tuning import TuningOptions

__all__ = [
    "MODELS",
    "Endpoints",
    "LeaderOptions",
    "MigApplyOptions",
    "OptimizerOptions",
    "PlanOptions",
    "PolicyOptions",
    "PrometheusOptions",
    "SecurityOptions",
    "ServiceOptions",
    "Settings",
    "SettingsError",
    "TuningOptions",
    "variables",
]
