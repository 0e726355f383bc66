"""The cluster side of Inferno, as pure logic: what a managed Deployment says about its server
(inventory), what to change in it to enact a solution (the actuation plan), and what a decision
may say (its checks against the static data). Nothing here talks to Kubernetes:
:mod:`inferno.k8s` reads the objects and applies the plans.

The names below are loaded on first use: importing one module of the package (``labels``, say)
does not load the solver the decisions need."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .decisions import decision_from_json, decision_to_json, decisions_from_solution
    from .inventory import HpaRef, InventoryError, ManagedDeployment, parse_deployment, server_row
    from .names import dns_label_problem, dns_subdomain_problem
    from .plan import Action, Decision, Event, PlanSettings, plan, plan_one, steady_batch
    from .serviceclass import class_row, class_status, problems
    from .validate import Guards, StaticLimits, decision_problem

__all__ = [
    "Action",
    "Decision",
    "Event",
    "Guards",
    "HpaRef",
    "InventoryError",
    "ManagedDeployment",
    "PlanSettings",
    "StaticLimits",
    "class_row",
    "class_status",
    "decision_from_json",
    "decision_problem",
    "decision_to_json",
    "decisions_from_solution",
    "dns_label_problem",
    "dns_subdomain_problem",
    "parse_deployment",
    "plan",
    "plan_one",
    "problems",
    "server_row",
    "steady_batch",
]

_HOME: dict[str, str] = {
    **dict.fromkeys(
        ("decision_from_json", "decision_to_json", "decisions_from_solution"), "decisions"
    ),
    **dict.fromkeys(
        ("HpaRef", "InventoryError", "ManagedDeployment", "parse_deployment", "server_row"),
        "inventory",
    ),
    **dict.fromkeys(("dns_label_problem", "dns_subdomain_problem"), "names"),
    **dict.fromkeys(
        ("Action", "Decision", "Event", "PlanSettings", "plan", "plan_one", "steady_batch"), "plan"
    ),
    **dict.fromkeys(("class_row", "class_status", "problems"), "serviceclass"),
    **dict.fromkeys(("Guards", "StaticLimits", "decision_problem"), "validate"),
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
