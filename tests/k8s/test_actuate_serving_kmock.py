"""Decided model instances and batching delay applied through the real client against kmock:
the serving container's ``INFERNO_INSTANCES`` / ``INFERNO_MAX_QUEUE_DELAY_US`` are set, and a
second cycle whose decision moves them within the batch tolerance patches nothing."""

from __future__ import annotations

import dataclasses

import kmock as kmock_lib

from inferno.cluster.plan import INSTANCES_ENV, QUEUE_DELAY_ENV
from inferno.k8s import KubeCluster

from .conftest import DEPLOY, actuator_config, sample_limits, stamp, stored
from .test_actuate_kmock import fixed_decisions, run_actuate, run_collect
from .test_actuate_kmock import world as world  # the fixture: the seeded emulator


def _env(obj: dict[str, object], container: int) -> dict[str, str]:
    c = obj["spec"]["template"]["spec"]["containers"][container]  # type: ignore[index]
    return {e["name"]: e.get("value", "") for e in c["env"]}


async def test_instances_and_delay_reach_the_container_and_noise_does_not_roll_it(
    world: kmock_lib.KubernetesEmulator, cluster: KubeCluster
) -> None:
    decisions = {d.server: d for d in fixed_decisions()}
    llama = dataclasses.replace(
        decisions["premium-llama-13b"], instances=3, max_queue_delay_us=2000
    )
    # the static data let the optimizer decide llama_13b's instances on its accelerator (a
    # measured contention of 4 counts); the actuator refuses them elsewhere
    limits = sample_limits()
    serving = dataclasses.replace(limits, serving={("llama_13b", llama.accelerator): 4})
    report = await run_actuate(cluster, await run_collect(cluster), [llama])
    (refused,) = [o for o in report.outcomes if o.server == llama.server]
    assert not report.ok and "no measured contention" in refused.error
    cfg = actuator_config()
    cfg = dataclasses.replace(cfg, limits=serving)
    report = await run_actuate(cluster, await run_collect(cluster), [llama], cfg=cfg)
    assert report.ok
    got = stored(world, DEPLOY, "llm", "llama")
    env = _env(got, 1)  # Triton is the second container of this Deployment
    assert env[INSTANCES_ENV] == "3" and env[QUEUE_DELAY_ENV] == "2000"
    assert env["INFERNO_MAX_BATCH_SIZE"] == str(llama.max_batch)
    # the next cycle's decision moves both by less than the tolerance (25 %): nothing changes
    noisy = dataclasses.replace(llama, instances=3, max_queue_delay_us=2300)
    report = await run_actuate(
        cluster, await run_collect(cluster), [noisy], cfg=cfg, cycle=stamp(2)
    )
    assert report.ok
    assert stored(world, DEPLOY, "llm", "llama") == got
    # a real move is applied
    moved = dataclasses.replace(llama, instances=1, max_queue_delay_us=0)
    report = await run_actuate(
        cluster, await run_collect(cluster), [moved], cfg=cfg, cycle=stamp(3)
    )
    env = _env(stored(world, DEPLOY, "llm", "llama"), 1)
    assert env[INSTANCES_ENV] == "1" and env[QUEUE_DELAY_ENV] == "0"
