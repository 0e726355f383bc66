"""The model instances and batching delay an emulated replica runs (issue 12).

In a cluster they reach Triton through the serving container's ``INFERNO_INSTANCES`` and
``INFERNO_MAX_QUEUE_DELAY_US`` (µs), which the actuator sets when the solver decided them
(:mod:`inferno.cluster.plan`) and the sample Deployments write into ``config.pbtxt``
(``instance_group count``, ``max_queue_delay_microseconds``). The emulated cluster reads the same
variables (:func:`container_serving`) and gives a batch-kind server's replicas its profile with
them (:func:`serving_profile`), which :class:`~inferno.emulator.batch_replica.BatchReplica`
emulates; :func:`decided_serving` is what a decision sets, for the replicas a run starts with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..cluster.plan import INSTANCES_ENV, QUEUE_DELAY_ENV, Decision
from ..k8s import ClusterError
from ..model.profiles import BatchProfile, Profile

__all__ = ["Serving", "container_serving", "decided_serving", "serving_profile"]

#: a server's model instances and batching delay (µs) as its container variables give them
#: (None: the variable is absent, the profile's own value is run)
Serving = tuple[int | None, int | None]


def decided_serving(dec: Decision) -> Serving:
    """The instances and delay (µs) a decision sets, None for what it leaves alone."""
    return (
        dec.instances if dec.instances > 0 else None,
        dec.max_queue_delay_us if dec.max_queue_delay_us >= 0 else None,
    )


def serving_profile(profile: Profile, instances: int | None, delay_us: int | None) -> Profile:
    """``profile`` as a replica runs it with ``instances`` model instances and a batching delay
    of ``delay_us`` µs (None: the profile's own). Only the batch kind has them; the others are
    returned as they are. :class:`~inferno.errors.InputError` when the profile cannot run them
    (an instance count its ``contention`` does not measure, a delay out of range)."""
    if not isinstance(profile, BatchProfile) or (instances is None and delay_us is None):
        return profile
    c = profile.instances if instances is None else instances
    d = profile.queue_delay_ms if delay_us is None else delay_us / 1000.0
    if c == profile.instances and d == profile.queue_delay_ms:
        return profile
    return replace(profile, instances=c, queue_delay_ms=d)


def container_serving(name: str, obj: Mapping[str, Any]) -> Serving:
    """The serving container's ``INFERNO_INSTANCES`` and ``INFERNO_MAX_QUEUE_DELAY_US`` (None:
    absent); ClusterError 422 for a value Triton would refuse (not an integer, instances < 1,
    delay < 0)."""
    try:
        containers = obj["spec"]["template"]["spec"]["containers"]
        container = next((c for c in containers if c.get("name") == "server"), containers[0])
        env = {str(e["name"]): e.get("value") for e in container.get("env") or []}
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise ClusterError(f"{name}: unusable serving container: {exc!r}", 422) from None
    out: list[int | None] = []
    for var, least in ((INSTANCES_ENV, 1), (QUEUE_DELAY_ENV, 0)):
        raw = env.get(var)
        if raw is None:
            out.append(None)
            continue
        try:
            value = int(str(raw).strip())
        except ValueError:
            value = least - 1
        if value < least:
            raise ClusterError(f"{name}: {var}={raw!r} is not an integer ≥ {least}", 422)
        out.append(value)
    return out[0], out[1]
