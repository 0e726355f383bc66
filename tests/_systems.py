"""Small synthetic :class:`~inferno.system.System` objects for solver tests.

The default world is built so that λ* can be read off by hand: every default profile is a
``BatchProfile(alpha, 0, 1)`` (a batch of one, τ = α ms, μ = 1/α per ms) and no class sets a
target, so λ* = 0.999 μ(1) (the top of the sizing range, bound ``max-rate``):

==========  ====  ============  ====  ===========  ===================
accelerator type  multiplicity  cost  α (ms)       λ* (req/min)
==========  ====  ============  ====  ===========  ===================
A           TA    1             10    60           0.999 × 1000 = 999
2xA         TA    2             20    30           0.999 × 2000 = 1998
B           TB    1             25    30           0.999 × 2000 = 1998
==========  ====  ============  ====  ===========  ===================

Models: ``m`` runs on A and B (acc_count 1), ``a`` on A only, ``d`` on 2xA only with acc_count 2
(one replica = 2 × 2xA = 4 TA units, cost 40). Classes: ``gold`` (priority 1) and ``bronze``
(priority 2), with empty targets for every model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType

from inferno.model.profiles import BatchProfile, G0Profile, Profile
from inferno.system import (
    Accelerator,
    Load,
    ModelProfile,
    OptimizerSpec,
    Server,
    ServiceClass,
    System,
    Target,
)
from inferno.units import MS_PER_MIN

__all__ = [
    "ACCELERATORS",
    "CLASSES",
    "LAMBDA",
    "PROFILES",
    "g0_profile",
    "limited",
    "make_system",
    "one_model_system",
    "server",
    "top_rate_per_min",
]

ACCELERATORS: dict[str, Accelerator] = {
    "A": Accelerator("A", type="TA", multiplicity=1, cost=10.0),
    "2xA": Accelerator("2xA", type="TA", multiplicity=2, cost=20.0),
    "B": Accelerator("B", type="TB", multiplicity=1, cost=25.0),
}

PROFILES: tuple[ModelProfile, ...] = (
    ModelProfile("m", "A", 1, BatchProfile(60.0, 0.0, 1)),
    ModelProfile("m", "B", 1, BatchProfile(30.0, 0.0, 1)),
    ModelProfile("a", "A", 1, BatchProfile(60.0, 0.0, 1)),
    ModelProfile("d", "2xA", 2, BatchProfile(30.0, 0.0, 1)),
)


def top_rate_per_min(alpha: float) -> float:
    """λ* (req/min) of ``BatchProfile(alpha, 0, 1)`` with no binding target: 0.999 / α per ms."""
    return 0.999 / alpha * MS_PER_MIN


#: λ* in req/min of each default (model, accelerator) pair, by hand (see the module docstring).
LAMBDA: dict[tuple[str, str], float] = {
    (mp.model, mp.accelerator): top_rate_per_min(mp.profile.alpha) for mp in PROFILES
}


def _classes(models: Iterable[str]) -> dict[str, ServiceClass]:
    targets = MappingProxyType({m: Target(model=m) for m in models})
    return {
        "gold": ServiceClass("gold", 1, targets),
        "bronze": ServiceClass("bronze", 2, targets),
    }


CLASSES: dict[str, ServiceClass] = _classes(["m", "a", "d"])


def server(
    name: str,
    rate: float,
    *,
    model: str = "m",
    cls: str = "gold",
    in_tokens: float = 0.0,
    out_tokens: float = 0.0,
    **kw: object,
) -> Server:
    """A server with ``rate`` requests per minute (extra keywords go to :class:`Server`)."""
    return Server(
        name=name,
        service_class=cls,
        model=model,
        load=Load(arrival_rate=rate, in_tokens=in_tokens, out_tokens=out_tokens),
        **kw,  # type: ignore[arg-type]
    )


def limited(**kw: object) -> OptimizerSpec:
    """An optimizer spec with capacity limits on."""
    return OptimizerSpec(unlimited=False, **kw)  # type: ignore[arg-type]


def make_system(
    servers: Sequence[Server],
    capacity: Mapping[str, int] | None = None,
    optimizer: OptimizerSpec | None = None,
    *,
    accelerators: Mapping[str, Accelerator] | None = None,
    profiles: Sequence[ModelProfile] | None = None,
    classes: Mapping[str, ServiceClass] | None = None,
) -> System:
    """A system of the default world (or the parts given) with ``servers``.

    With no ``optimizer``, capacity limits apply when ``capacity`` is given, otherwise the system
    is unlimited.
    """
    if optimizer is None:
        optimizer = OptimizerSpec(unlimited=capacity is None)
    return System(
        accelerators=MappingProxyType(
            dict(accelerators if accelerators is not None else ACCELERATORS)
        ),
        profiles=tuple(profiles if profiles is not None else PROFILES),
        classes=MappingProxyType(dict(classes if classes is not None else CLASSES)),
        servers=tuple(servers),
        capacity=MappingProxyType(dict(capacity or {})),
        optimizer=optimizer,
    )


def one_model_system(
    model: str,
    profiles: Mapping[str, Profile],
    servers: Sequence[Server],
    targets: Mapping[str, Target],
    *,
    accelerators: Mapping[str, Accelerator] | None = None,
    capacity: Mapping[str, int] | None = None,
    optimizer: OptimizerSpec | None = None,
    acc_count: int = 1,
) -> System:
    """A system of one model with ``profiles`` per accelerator and a class per entry of
    ``targets`` (class name -> target; priorities in the order given)."""
    classes = {
        name: ServiceClass(name, i + 1, MappingProxyType({model: t}))
        for i, (name, t) in enumerate(targets.items())
    }
    return make_system(
        servers,
        capacity,
        optimizer,
        accelerators=accelerators,
        profiles=[ModelProfile(model, acc, acc_count, p) for acc, p in sorted(profiles.items())],
        classes=classes,
    )


def g0_profile() -> G0Profile:
    """Inferno's granite-13b-like G0 profile (N = 38 at 1024 tokens)."""
    return G0Profile(alpha=7.77, beta=0.15, max_batch_size=76, at_tokens=512)
