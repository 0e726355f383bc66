"""The decided model instances and batching delay reach the emulated batch replicas (issue 12):
the plan's patch of ``INFERNO_INSTANCES`` / ``INFERNO_MAX_QUEUE_DELAY_US`` rolls the replicas onto
the profile with them, and their latency then follows the model of what they run."""

from __future__ import annotations

from typing import Any

import pytest
from _systems import one_model_system, server

from inferno.cluster.inventory import parse_deployment
from inferno.cluster.plan import INSTANCES_ENV, QUEUE_DELAY_ENV, Decision, PlanSettings, plan_one
from inferno.emulator import Poisson, ServerSpec, Simulation
from inferno.k8s import ClusterError
from inferno.model.analyzer import analyze_rate
from inferno.model.profiles import BatchProfile, G0Profile, Tokens
from inferno.simulate import EmulatedCluster
from inferno.simulate.cluster import NAMESPACE, deployment_name
from inferno.simulate.serving import container_serving, decided_serving, serving_profile
from inferno.system import System, Target

ALPHA, BETA, N = 30.0, 2.5, 16
PROFILE = BatchProfile(ALPHA, BETA, N, contention=(1.0, 1.2))
RATE_PER_S = 10.0  # low: a request mostly finds an instance idle, the delay then decides
DELAY_US = 20_000
T_PATCH, T_END = 120_000.0, 420_000.0  # ms
NAME = "s"


def _system() -> System:
    return one_model_system(
        "m", {"A": PROFILE}, [server(NAME, RATE_PER_S * 60.0)], {"gold": Target("m")}
    )


def _cluster(system: System) -> tuple[Simulation, EmulatedCluster]:
    spec = ServerSpec(PROFILE, Poisson(RATE_PER_S * 60.0), batch_size=N, startup_delay_ms=1000.0)
    sim = Simulation({NAME: spec}, seed=5)
    return sim, EmulatedCluster(sim, system, {NAME: ("A", 1, N)}, startup_delay_s=1.0)


def _model_mean(instances: int, delay_ms: float, rps: float) -> float:
    profile = serving_profile(PROFILE, instances, round(delay_ms * 1000))
    return analyze_rate(profile, Tokens(), rps).avg_resp_time


def _apply(cluster: EmulatedCluster, dec: Decision) -> None:
    """What the actuator does: the plan's patch of the Deployment, applied."""
    obj = cluster.get_deployment(NAMESPACE, deployment_name(NAME))
    action = plan_one(parse_deployment(obj), dec, PlanSettings())
    assert action.kind == "update", action
    cluster.patch_deployment(NAMESPACE, deployment_name(NAME), list(action.patch))


def test_decided_instances_and_delay_change_the_batch_replicas() -> None:
    system = _system()
    sim, cluster = _cluster(system)
    sim.run_until(T_PATCH)
    before = sim.window(NAME, 10_000.0, T_PATCH)
    dec = Decision(NAME, "A", 1, N, 1, instances=2, max_queue_delay_us=DELAY_US)
    _apply(cluster, dec)
    # the decision is in force: a rolling update onto the profile with two instances and 20 ms
    cfg = cluster.config(NAME)
    assert (cfg.accelerator, cfg.batch, cfg.instances, cfg.delay_us) == ("A", N, 2, DELAY_US)
    assert cluster.changes[-1].config_changed
    (new,) = [r for r in sim.replicas(NAME) if r.created_at == T_PATCH]
    assert new.profile == BatchProfile(ALPHA, BETA, N, DELAY_US / 1000.0, "triton", 2, (1.0, 1.2))
    obj = cluster.get_deployment(NAMESPACE, deployment_name(NAME))
    assert container_serving(NAME, obj) == (2, DELAY_US)
    sim.run_until(T_END)
    after = sim.window(NAME, T_PATCH + 10_000.0, T_END)
    # each window follows the model of what its replicas ran (the model is exact for one
    # instance without a delay, within 1% of the emulator with a delay at this load), and the
    # two models differ by far more than that: the requests now wait for company
    plain, decided = _model_mean(1, 0.0, RATE_PER_S), _model_mean(2, 20.0, RATE_PER_S)
    assert decided > 1.15 * plain
    assert before.latency_mean == pytest.approx(plain, rel=0.03)
    assert after.latency_mean == pytest.approx(decided, rel=0.03)
    # a decision that keeps them is no change (and the batch's hysteresis keeps a close delay)
    changes = len(cluster.changes)
    obj = cluster.get_deployment(NAMESPACE, deployment_name(NAME))
    action = plan_one(parse_deployment(obj), dec, PlanSettings())
    assert action.patch == ()
    assert len(cluster.changes) == changes


def test_a_run_starts_with_the_decided_serving() -> None:
    system = _system()
    dec = Decision(NAME, "A", 1, N, 1, instances=2, max_queue_delay_us=DELAY_US)
    profile = serving_profile(PROFILE, *decided_serving(dec))
    spec = ServerSpec(profile, Poisson(RATE_PER_S * 60.0), batch_size=N)
    sim = Simulation({NAME: spec}, seed=5)
    cluster = EmulatedCluster(
        sim, system, {NAME: ("A", 1, N)}, serving={NAME: decided_serving(dec)}
    )
    obj = cluster.get_deployment(NAMESPACE, deployment_name(NAME))
    env = {e["name"]: e["value"] for e in obj["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env[INSTANCES_ENV] == "2" and env[QUEUE_DELAY_ENV] == str(DELAY_US)
    assert cluster.config(NAME).instances == 2
    # the plan reads them back as running: nothing to change
    assert plan_one(parse_deployment(obj), dec, PlanSettings()).patch == ()


def test_serving_profile_leaves_what_is_not_decided() -> None:
    assert decided_serving(Decision(NAME, "A", 1, N)) == (None, None)
    assert serving_profile(PROFILE, None, None) is PROFILE
    assert serving_profile(PROFILE, None, 500).queue_delay_ms == 0.5  # type: ignore[union-attr]
    assert serving_profile(PROFILE, 2, None).instances == 2  # type: ignore[union-attr]
    g0 = G0Profile(7.77, 0.15, 76, 512)
    assert serving_profile(g0, 2, 1000) is g0  # no dynamic batcher: ignored


def _env_patch(values: dict[str, str]) -> list[dict[str, Any]]:
    base = "/spec/template/spec/containers/0/env/-"
    return [
        {"op": "add", "path": base, "value": {"name": k, "value": v}} for k, v in values.items()
    ]


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({INSTANCES_ENV: "3"}, "contention must give κ(c) for c = 1..3"),
        ({INSTANCES_ENV: "0"}, f"{INSTANCES_ENV}='0' is not an integer ≥ 1"),
        ({QUEUE_DELAY_ENV: "soon"}, f"{QUEUE_DELAY_ENV}='soon' is not an integer ≥ 0"),
        ({QUEUE_DELAY_ENV: "-5"}, f"{QUEUE_DELAY_ENV}='-5' is not an integer ≥ 0"),
        ({QUEUE_DELAY_ENV: str(61_000_000)}, "queue_delay_ms must be between 0 and"),
    ],
)
def test_serving_values_the_profile_cannot_run_are_refused(
    values: dict[str, str], says: str
) -> None:
    sim, cluster = _cluster(_system())
    sim.run_until(1_000.0)
    before = cluster.get_deployment(NAMESPACE, deployment_name(NAME))
    with pytest.raises(ClusterError) as info:
        cluster.patch_deployment(NAMESPACE, deployment_name(NAME), _env_patch(values))
    assert info.value.status == 422 and says in str(info.value)
    # nothing changed: the Deployment, the configuration, the replicas
    assert cluster.get_deployment(NAMESPACE, deployment_name(NAME)) == before
    assert len(cluster.configs[NAME]) == 1 and not cluster.changes
    assert all(r.profile == PROFILE for r in sim.replicas(NAME))
