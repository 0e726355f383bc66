"""The control policy's guards, and that the cluster's cycle and `inferno simulate` run the same
policy with the same deployed defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from inferno.cluster.inventory import ManagedDeployment
from inferno.cluster.plan import Decision, PlanSettings
from inferno.control.guards import guard
from inferno.control.policy import Policy, forecast_params
from inferno.settings import PolicyOptions, Settings, SettingsError, variables


def dep(server: str, replicas: int, accelerator: str = "A100", batch: int = 8) -> ManagedDeployment:
    return ManagedDeployment(
        namespace="ns",
        name=server,
        server=server,
        model="m",
        service_class="Premium",
        replicas=replicas,
        ready_replicas=replicas,
        accelerator=accelerator,
        max_batch=batch,
        container=0,
        container_name="c",
    )


def dec(
    server: str, replicas: int, accelerator: str = "A100", batch: int = 8, gpus: int = 1
) -> Decision:
    return Decision(
        server=server,
        accelerator=accelerator,
        replicas=replicas,
        max_batch=batch,
        gpus_per_replica=gpus,
    )


def test_the_defaults_change_nothing() -> None:
    opts = Settings.from_env({}).policy
    decisions = [dec("a", 20), dec("b", 1), Decision(server="c", allocated=False, reason="x")]
    out = guard(decisions, {"a": dep("a", 2), "b": dep("b", 9)}, {}, 0.0, opts)
    assert out.decisions == decisions and out.clamps == []


def test_scale_up_is_immediate_and_scale_down_waits_for_the_window() -> None:
    opts = PolicyOptions(stabilization_window=60)
    t = [0.0]
    policy = Policy(opts, lambda: t[0])
    current = [dep("a", 4)]
    assert policy.guard([dec("a", 10)], current).decisions[0].replicas == 10  # up at once
    t[0] = 30.0
    held = policy.guard([dec("a", 5)], current)
    assert held.decisions[0].replicas == 10  # the window remembers 10
    assert [(c.rule, c.wanted, c.got) for c in held.clamps] == [("scale-down-window", 5, 10)]
    assert "scale-down-window: 5 → 10 replicas" in held.decisions[0].reason
    t[0] = 61.0
    assert policy.guard([dec("a", 5)], current).decisions[0].replicas == 5  # 10 left the window
    t[0] = 70.0
    other = policy.guard([dec("a", 3, accelerator="H100")], current)
    assert other.decisions[0].replicas == 3  # another accelerator: not the same configuration


@pytest.mark.parametrize(
    ("now", "wanted", "opts", "got", "rule"),
    [
        (4, 20, PolicyOptions(max_scale_up_pods=4), 8, "max-scale-up"),
        (10, 40, PolicyOptions(max_scale_up_percent=100), 20, "max-scale-up"),
        (10, 40, PolicyOptions(max_scale_up_pods=4, max_scale_up_percent=50), 15, "max-scale-up"),
        (10, 1, PolicyOptions(max_scale_down_pods=2), 8, "max-scale-down"),
        (10, 1, PolicyOptions(max_scale_down_percent=50), 5, "max-scale-down"),
    ],
)
def test_a_decision_beyond_the_step_limit_is_clamped(
    now: int, wanted: int, opts: PolicyOptions, got: int, rule: str
) -> None:
    out = guard([dec("a", wanted)], {"a": dep("a", now)}, {}, 0.0, opts)
    assert out.decisions[0].replicas == got
    assert [(c.server, c.rule, c.wanted, c.got) for c in out.clamps] == [("a", rule, wanted, got)]


def test_within_the_step_nothing_is_clamped_and_a_new_gpu_type_is_not_stepped() -> None:
    opts = PolicyOptions(max_scale_up_pods=4, max_scale_down_pods=1)
    out = guard(
        [dec("a", 8), dec("b", 30, accelerator="H100")],
        {"a": dep("a", 4), "b": dep("b", 2)},
        {},
        0.0,
        opts,
    )
    assert [d.replicas for d in out.decisions] == [8, 30] and out.clamps == []


def test_the_gpu_ceiling_holds_and_cuts_only_increases() -> None:
    opts = PolicyOptions(max_total_gpus=20)
    decisions = [dec("a", 6, gpus=2), dec("b", 10), dec("c", 4)]
    current = {"a": dep("a", 2), "b": dep("b", 10), "c": dep("c", 1)}
    out = guard(decisions, current, {}, 0.0, opts)
    held = sum(d.replicas * d.gpus_per_replica for d in out.decisions)
    assert held <= 20
    replicas = {d.server: d.replicas for d in out.decisions}
    assert replicas["b"] == 10  # no increase: never cut
    assert replicas["a"] >= 2 and replicas["c"] >= 1  # never below what runs
    assert {c.rule for c in out.clamps} == {"max-total-gpus"}


def test_headroom_scales_only_the_arrival_rate() -> None:
    rows: list[dict[str, Any]] = [
        {"name": "a", "currentAlloc": {"load": {"arrivalRate": 100, "avgLength": 10}}},
        {"name": "b"},
    ]
    policy = Policy(PolicyOptions(forecast=False, headroom=0.25), lambda: 0.0)
    out = policy.loads(rows)
    assert out[0]["currentAlloc"]["load"] == {"arrivalRate": 125.0, "avgLength": 10}
    assert out[1] == {"name": "b"}
    assert rows[0]["currentAlloc"]["load"]["arrivalRate"] == 100  # not mutated


def test_the_rows_ask_the_solver_to_keep_and_size_the_running_batch() -> None:
    """The batch hysteresis goes to the solver with the rows (``batchTolerance``), which sizes
    a kept batch (tests/solver/test_running_batch.py); the deployed settings turn it on."""
    rows: list[dict[str, Any]] = [
        {"name": "a", "currentAlloc": {"load": {"arrivalRate": 100, "avgLength": 10}}}
    ]
    plan = PlanSettings(batch_tolerance=0.25)
    kept = Policy(PolicyOptions(forecast=False), lambda: 0.0, plan).loads(rows)
    assert kept[0]["batchTolerance"] == 0.25
    assert "batchTolerance" not in rows[0]  # not mutated
    assert "batchTolerance" not in Policy(PolicyOptions(forecast=False), lambda: 0.0).loads(rows)[0]
    settings = Settings.from_env({})
    deployed = Policy.from_settings(settings, lambda: 0.0)
    assert deployed.loads(rows)[0]["batchTolerance"] == settings.plan.batch_tolerance > 0


@pytest.mark.parametrize(
    ("env", "value"),
    [
        ("INFERNO_POLICY_HEADROOM", "-1"),
        ("INFERNO_SCALE_DOWN_WINDOW", "1e9"),
        ("INFERNO_MAX_SCALE_UP_PODS", "-3"),
        ("INFERNO_MAX_SCALE_DOWN_PERCENT", "nan"),
        ("INFERNO_MAX_TOTAL_GPUS", "many"),
    ],
)
def test_bad_policy_settings_name_the_variable(env: str, value: str) -> None:
    with pytest.raises(SettingsError, match=env):
        Settings.from_env({env: value})


def test_simulate_runs_the_deployed_policy_with_the_deployed_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fails if `inferno simulate`'s inferno policy stops being inferno.control.policy.Policy
    made from the deployed settings: its options, its forecaster's constants (from the
    scenario's own control period and window) and its batch tolerance are the controller's."""
    from simulate.scenarios import small_scenario, write_scenario

    from inferno.simulate import load_scenario, run_scenario
    from inferno.simulate.scenario import INFERNO_SETTINGS

    made: list[Policy] = []
    real = Policy.from_settings.__func__  # type: ignore[attr-defined]

    def spy(cls: type[Policy], settings: Settings, clock: Any) -> Policy:
        made.append(real(cls, settings, clock))
        return made[-1]

    monkeypatch.setattr(Policy, "from_settings", classmethod(spy))
    doc = small_scenario(duration=60, policies=["inferno"])
    sc = load_scenario(write_scenario(tmp_path, doc))
    run_scenario(sc)
    deployed = Settings.from_env({}).with_overrides(
        control_period=sc.control_period_s, load_window=sc.metrics.window_s
    )
    (policy,) = made
    assert type(policy) is Policy
    assert policy.opts == deployed.policy
    assert policy.params == forecast_params(deployed)
    assert policy.batch_tolerance == deployed.plan.batch_tolerance
    # and the controller builds its policy the same way
    assert Policy.from_settings(deployed, lambda: 0.0).params == policy.params
    # a scenario may set deployed settings only
    assert set(INFERNO_SETTINGS) <= {name for _, name, *_ in variables()} | {"batch_tolerance"}


def moving(
    server: str, replicas: int, cost: float, stay_replicas: int, stay_cost: float
) -> Decision:
    """A decision moving ``server`` from A100 to H100, with its stay on A100."""
    stay = Decision(server, "A100", stay_replicas, 8, 1, cost=stay_cost)
    return Decision(server, "H100", replicas, 16, 1, cost=cost, stay=stay)


def test_a_gpu_switch_that_saves_little_is_not_made() -> None:
    opts = PolicyOptions(switch_min_saving=0.1, switch_delay=0)
    out = guard([moving("a", 2, 95.0, 3, 100.0)], {"a": dep("a", 3)}, {}, 0.0, opts)
    (d,) = out.decisions
    assert (d.accelerator, d.replicas, d.max_batch, d.stay) == ("A100", 3, 8, None)
    (c,) = out.clamps
    assert c.rule == "gpu-switch-saving" and "5%" in c.message and "A100 kept" in c.message
    assert "gpu-switch-saving" in d.reason  # the Event carries it


def test_a_gpu_switch_waits_until_it_was_preferred_for_the_delay() -> None:
    opts = PolicyOptions(switch_min_saving=0.1, switch_delay=60)
    t = [100.0]
    policy = Policy(opts, lambda: t[0])
    current = [dep("a", 3)]
    first = policy.guard([moving("a", 2, 50.0, 3, 100.0)], current)
    assert first.decisions[0].accelerator == "A100"
    assert [c.rule for c in first.clamps] == ["gpu-switch-delay"]
    assert policy.state.switches == {"a": ("H100", 100.0)}
    t[0] = 130.0
    assert (
        policy.guard([moving("a", 2, 50.0, 3, 100.0)], current).decisions[0].accelerator == "A100"
    )
    t[0] = 160.0  # preferred since 100 s: 60 s now
    done = policy.guard([moving("a", 2, 50.0, 3, 100.0)], current)
    assert (done.decisions[0].accelerator, done.decisions[0].replicas) == ("H100", 2)
    assert done.clamps == [] and policy.state.switches == {}
    # a preference that lapses starts over
    t[0] = 200.0
    policy.guard([moving("a", 2, 50.0, 3, 100.0)], current)
    t[0] = 230.0
    policy.guard([dec("a", 3)], current)  # the optimizer keeps A100 this cycle
    t[0] = 260.0
    again = policy.guard([moving("a", 2, 50.0, 3, 100.0)], current)
    assert again.decisions[0].accelerator == "A100" and policy.state.switches["a"][1] == 260.0


def test_the_rollout_budget_defers_configuration_changes_beyond_it() -> None:
    opts = PolicyOptions(max_rollouts=1, switch_min_saving=0, switch_delay=0)
    current = {"a": dep("a", 3), "b": dep("b", 2), "c": dep("c", 2)}
    decisions = [
        moving("a", 2, 50.0, 3, 100.0),  # a GPU switch: a rollout (first by name: made)
        dec("b", 4, batch=32),  # a new batch on the same GPU: a rollout, deferred
        dec("c", 5),  # replicas only: no rollout, never deferred
    ]
    out = guard(decisions, current, {}, 0.0, opts)
    by = {d.server: d for d in out.decisions}
    assert (by["a"].accelerator, by["a"].max_batch) == ("H100", 16)
    assert (by["b"].accelerator, by["b"].max_batch, by["b"].replicas) == ("A100", 8, 4)
    assert by["c"].replicas == 5
    assert [(c.server, c.rule) for c in out.clamps] == [("b", "max-rollouts")]


def test_a_change_of_instances_or_delay_is_a_rollout_the_budget_counts() -> None:
    """New model instances or a new batching delay restart every pod as a new batch does: with
    the actuator's settings the guard reads the running values, keeps what is within the batch
    tolerance (noise rolls nothing), and defers the rest beyond the budget, leaving the running
    values alone."""
    from dataclasses import replace as dc_replace

    from inferno.cluster.plan import INSTANCES_ENV, QUEUE_DELAY_ENV

    def running(server: str, instances: int, delay: int) -> ManagedDeployment:
        env = ((INSTANCES_ENV, str(instances)), (QUEUE_DELAY_ENV, str(delay)))
        return dc_replace(dep(server, 2), env=env)

    opts = PolicyOptions(max_rollouts=1)
    cfg = PlanSettings(batch_tolerance=0.25)
    current = {"a": running("a", 1, 0), "b": running("b", 2, 1000), "c": running("c", 2, 1000)}
    decisions = [
        dc_replace(dec("a", 2), instances=3, max_queue_delay_us=0),  # new instances: a rollout
        dc_replace(dec("b", 2), instances=2, max_queue_delay_us=5000),  # new delay: deferred
        dc_replace(dec("c", 2), instances=2, max_queue_delay_us=1100),  # within 25%: kept
    ]
    out = guard(decisions, current, {}, 0.0, opts, 0.25, serving=cfg)
    by = {d.server: d for d in out.decisions}
    assert by["a"].instances == 3
    assert (by["b"].instances, by["b"].max_queue_delay_us) == (0, -1)  # running values left
    assert by["c"].max_queue_delay_us == 1000  # the running delay, not a rollout
    assert [(c.server, c.rule) for c in out.clamps] == [("b", "max-rollouts")]
    # without the actuator's settings the guard cannot see them: nothing is counted
    blind = guard(decisions, current, {}, 0.0, opts, 0.25)
    assert blind.clamps == []
    # the deployed policy passes them
    assert Policy.from_settings(Settings.from_env({}), lambda: 0.0).plan is not None


def test_the_optimizer_attaches_the_stay_decision_to_a_gpu_switch() -> None:
    """The large sample's server on MI300X at a load where G2 is cheaper: the decision moves it,
    and its stay is the cheapest allocation on MI300X, costing more."""
    from inferno.control.optimize import optimize, read_static_data

    root = Path(__file__).resolve().parents[2] / "samples" / "large"
    static = read_static_data(root)
    row = {
        "name": "Premium-llama_7b",
        "class": "Premium",
        "model": "llama_7b",
        "currentAlloc": {
            "accelerator": "MI300X",
            "numReplicas": 1,
            "maxBatch": 76,
            "load": {"arrivalRate": 48.0, "avgInTokens": 0, "avgOutTokens": 1024},
        },
    }
    (d,) = optimize(static, [row], []).decisions
    assert d.accelerator != "MI300X"  # at this load another GPU type is cheaper
    assert d.stay is not None and d.stay.accelerator == "MI300X" and d.stay.allocated
    assert d.cost is not None and d.stay.cost is not None and d.stay.cost > d.cost
    from inferno.cluster.decisions import decision_from_json, decision_to_json

    assert decision_from_json(decision_to_json(d)) == d


def test_a_service_class_overrides_the_policy_for_its_servers() -> None:
    """Premium holds its replicas for a 300 s window and steps up one at a time; Free, without
    overrides, follows the decisions at once. A class's bad overrides are a problem, and its
    servers run the defaults."""
    t = [0.0]
    policy = Policy(PolicyOptions(), lambda: t[0])
    problems = policy.set_classes(
        [
            {"name": "Premium", "policy": {"stabilization_window": 300, "max_scale_up_pods": 1}},
            {"name": "Free"},
            {"name": "Bronze", "policy": {"margin_z": -3}},
        ]
    )
    assert len(problems) == 1 and "Bronze" in problems[0] and "INFERNO_MARGIN_Z" in problems[0]
    assert policy.options_for("premium").stabilization_window == 300  # names match casefolded
    assert policy.options_for("Bronze") == policy.opts
    prem = ManagedDeployment(**{**vars_of(dep("p", 4)), "service_class": "Premium"})
    free = ManagedDeployment(**{**vars_of(dep("f", 4)), "service_class": "Free"})
    up = policy.guard([dec("p", 9), dec("f", 9)], [prem, free])
    assert {d.server: d.replicas for d in up.decisions} == {"p": 5, "f": 9}
    assert [(c.server, c.rule) for c in up.clamps] == [("p", "max-scale-up")]
    t[0] = 60.0
    down = policy.guard([dec("p", 2), dec("f", 2)], [prem, free])
    assert {d.server: d.replicas for d in down.decisions} == {"p": 5, "f": 2}


def vars_of(d: ManagedDeployment) -> dict[str, Any]:
    from dataclasses import fields

    return {f.name: getattr(d, f.name) for f in fields(d)}


def test_every_clamp_names_a_listed_rule() -> None:
    """The rules the guards write are CLAMP_RULES (the controller's clamp metric lists them in
    its help, and docs/service-metrics.md from it); a rule outside it is refused."""
    import re
    from pathlib import Path

    import inferno.control.guards as guards

    written = set(
        re.findall(r'Clamp\(\s*d\.server,\s*"([a-z-]+)"', Path(guards.__file__).read_text())
    )
    assert written == set(guards.CLAMP_RULES)
    with pytest.raises(ValueError, match="CLAMP_RULES"):
        guards.Clamp("s", "made-up", 1, 2)
