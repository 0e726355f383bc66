"""The actuator trusts nothing it is sent, checked through the real client against kmock.

Every test names its targets by reference (namespace, Deployment, server) as the controller does;
the actuator re-reads each Deployment from the emulator and must refuse what is not Inferno's
(unlabelled, another server's, an unwatched namespace, a bad name), what a newer plan already
changed, and decisions the static data does not allow; after the cycle's deadline it applies
nothing more. What was refused or skipped is proven untouched from kmock's recorded requests.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Iterable
from typing import Any

import kmock as kmock_lib
import pytest

from inferno.cluster import labels as L
from inferno.cluster.plan import Decision
from inferno.control import ActuationReport, Outcome, actuate
from inferno.control.actuate import ActuatorConfig, CycleStamp, Target
from inferno.k8s import KubeCluster

from .conftest import (
    DEPLOY,
    EVENTS,
    GPU,
    PRODUCT,
    actuator_config,
    sample_limits,
    seed,
    stamp,
    stored,
    triton_deployment,
)

NS = "llm"
CYCLE_PATH = "/metadata/annotations/inferno.server~1cycle"


def valid(
    server: str,
    model: str = "llama_13b",
    accelerator: str = "H100",
    *,
    replicas: int = 4,
    max_batch: int = 32,
) -> Decision:
    """A decision the static data of samples/large allows (GPUs and selector derived from it)."""
    limits = sample_limits()
    acc = limits.accelerators[accelerator]
    assert max_batch <= limits.max_batch[(model, accelerator)]
    return Decision(
        server=server,
        accelerator=accelerator,
        replicas=replicas,
        max_batch=max_batch,
        gpus_per_replica=limits.gpus[(model, accelerator)],
        node_selector={PRODUCT: acc.type},
    )


def managed(name: str, namespace: str = NS, **kw: Any) -> dict[str, Any]:
    """A managed llama_13b Deployment (server = its name unless given), 2 replicas, 1 GPU."""
    kw.setdefault("model", "llama_13b")
    kw.setdefault("replicas", 2)
    return triton_deployment(name, namespace, **kw)


def foreign_web(replicas: int = 3, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """Someone else's Deployment: victim/web, an nginx with no Inferno labels."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "victim",
            "labels": {"app": "web", **(labels or {})},
            "annotations": {"deployment.kubernetes.io/revision": "12"},
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]},
            },
        },
        "status": {"replicas": replicas, "readyReplicas": replicas},
    }


async def act(
    cluster: KubeCluster,
    targets: Iterable[Target],
    decisions: Iterable[Decision],
    *,
    cfg: ActuatorConfig | None = None,
    cycle: CycleStamp | None = None,
    clock: Callable[[], float] | None = None,
) -> ActuationReport:
    extra: dict[str, Any] = {} if clock is None else {"clock": clock}
    return await asyncio.to_thread(
        actuate,
        cluster,
        list(targets),
        list(decisions),
        cfg or actuator_config(),
        cycle or stamp(1),
        **extra,
    )


def by_name(report: ActuationReport) -> dict[str, Outcome]:
    return {o.deployment: o for o in report.outcomes}


def requests_to(
    emulator: kmock_lib.KubernetesEmulator, method: str, ns: str, name: str | None = None
) -> list[Any]:
    """kmock's recorded requests of one method to a namespace (and object name)."""
    view = emulator[method, emulator.namespace(ns)]
    if name is not None:
        view = view[emulator.name(name)]
    return list(view)


def deployment_patches(emulator: kmock_lib.KubernetesEmulator, ns: str, name: str) -> list[Any]:
    return list(
        emulator["patch", emulator.resource(DEPLOY), emulator.namespace(ns), emulator.name(name)]
    )


def events_for(emulator: kmock_lib.KubernetesEmulator, ns: str, name: str) -> list[dict[str, Any]]:
    return [
        r.data
        for r in emulator["post", emulator.resource(EVENTS)]
        if (r.data["involvedObject"]["namespace"], r.data["involvedObject"]["name"]) == (ns, name)
    ]


def assert_refused(o: Outcome, *fragments: str) -> None:
    assert (o.kind, o.applied, o.patched) == ("refused", False, False)
    assert o.error.startswith("refused: "), o.error
    for fragment in fragments:
        assert fragment in o.error, (fragment, o.error)


def assert_untouched(
    emulator: kmock_lib.KubernetesEmulator, original: dict[str, Any], *, events: bool = False
) -> None:
    """No PATCH reached the Deployment and it is what was seeded (no Event either, unless
    ``events``: a refused decision is reported on the Deployment with a Warning)."""
    ns, name = original["metadata"]["namespace"], original["metadata"]["name"]
    assert deployment_patches(emulator, ns, name) == []
    assert stored(emulator, DEPLOY, ns, name) == original
    assert len(emulator.objects[DEPLOY, ns, name].history) == 1
    if not events:
        assert events_for(emulator, ns, name) == []


# -- not ours -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "labels",
    [
        {},
        {L.MANAGED: "false"},
        {L.MANAGED: "True", L.MODEL: "llama_13b"},  # only the exact value opts in
        {L.MODEL: "llama_13b", L.SERVER_NAME: "web"},  # looks like ours, not opted in
    ],
)
async def test_foreign_unlabelled_deployment_is_refused_and_never_patched(
    emulator: kmock_lib.KubernetesEmulator, cluster: KubeCluster, labels: dict[str, str]
) -> None:
    victim = foreign_web(replicas=3, labels=labels)
    ours = managed("llama")
    seed(emulator, victim, ours)
    # a plan that would scale someone else's web server down, next to a legitimate one
    attack = Decision(
        "web", "H100", replicas=0, max_batch=32, gpus_per_replica=1, node_selector={PRODUCT: "H100"}
    )
    report = await act(
        cluster,
        [Target("victim", "web", "web"), Target(NS, "llama", "llama")],
        [attack, valid("llama")],
    )
    outcomes = by_name(report)
    assert_refused(outcomes["web"], f"not labelled {L.MANAGED}=true")
    assert (outcomes["web"].namespace, outcomes["web"].server) == ("victim", "web")
    # read once, never written: no PATCH (of any resource) and no Event in its namespace
    assert len(requests_to(emulator, "get", "victim", "web")) == 1
    assert requests_to(emulator, "patch", "victim") == []
    assert requests_to(emulator, "post", "victim") == []
    assert stored(emulator, DEPLOY, "victim", "web")["spec"]["replicas"] == 3
    assert_untouched(emulator, victim)
    # the refusal does not stop the legitimate target
    assert outcomes["llama"].patched
    assert stored(emulator, DEPLOY, NS, "llama")["spec"]["replicas"] == 4
    assert report.ok is False and report.to_json()["updated"] == 1


async def test_unwatched_namespace_is_refused_without_reading_it(
    emulator: kmock_lib.KubernetesEmulator, cluster: KubeCluster
) -> None:
    # even a managed Deployment is out of bounds outside WATCH_NAMESPACE
    other = managed("llama", "team-b")
    ours = managed("llama")
    seed(emulator, other, ours)
    report = await act(
        cluster,
        [Target("team-b", "llama", "llama"), Target(NS, "llama", "llama")],
        [valid("llama")],
        cfg=actuator_config([NS]),
    )
    [mine, theirs] = report.outcomes  # ordered by (namespace, name)
    assert (mine.namespace, mine.patched) == (NS, True)
    assert theirs.namespace == "team-b"
    assert_refused(theirs, "'team-b' is not watched")
    assert list(emulator[emulator.namespace("team-b")]) == []  # not even read
    assert_untouched(emulator, other)


@pytest.mark.parametrize(
    ("namespace", "name", "fragment"),
    [
        ("LLM", "llama", "namespace"),
        ("llm/../kube-system", "llama", "namespace"),
        ("llm", "Llama", "Deployment name"),
        ("llm", "llama/scale", "Deployment name"),
        ("llm", "-llama", "Deployment name"),
        ("llm", "l" * 254, "Deployment name"),
    ],
)
async def test_names_that_are_not_dns_names_are_refused_before_any_request(
    emulator: kmock_lib.KubernetesEmulator,
    cluster: KubeCluster,
    namespace: str,
    name: str,
    fragment: str,
) -> None:
    seed(emulator, managed("llama"))
    report = await act(cluster, [Target(namespace, name, "llama")], [valid("llama")])
    [o] = report.outcomes
    assert_refused(o, fragment)
    assert list(emulator) == []  # no request at all


async def test_missing_deployment_is_refused(
    emulator: kmock_lib.KubernetesEmulator, cluster: KubeCluster
) -> None:
    report = await act(cluster, [Target(NS, "ghost", "ghost")], [valid("ghost")])
    [o] = report.outcomes
    assert_refused(o, "does not exist")
    assert list(emulator["patch"]) == [] and list(emulator["post"]) == []
    emulator.errors.clear()


async def test_managed_deployment_of_another_server_is_refused(
    emulator: kmock_lib.KubernetesEmulator, cluster: KubeCluster
) -> None:
    theirs = managed("llama", server="premium-llama-13b", replicas=1)
    mistral = managed("mistral", model="mistral_7b", replicas=1)
    seed(emulator, theirs, mistral)
    report = await act(
        cluster,
        [
            # the target claims the Deployment serves "llama" (its name): its label says otherwise
            Target(NS, "llama", "llama"),
            # the target names the right Deployment but another server's decision
            Target(NS, "mistral", "premium-llama-13b"),
        ],
        [valid("llama", replicas=9), valid("premium-llama-13b", replicas=9)],
    )
    outcomes = by_name(report)
    assert_refused(outcomes["llama"], "serves 'premium-llama-13b', not 'llama'")
    assert outcomes["llama"].before == {"replicas": 1, "accelerator": "", "maxBatch": 0}
    assert_refused(outcomes["mistral"], "serves 'mistral', not 'premium-llama-13b'")
    assert_untouched(emulator, theirs)
    assert_untouched(emulator, mistral)
    assert list(emulator["patch"]) == []

    # the same Deployment, named with its own server, is applied
    report = await act(cluster, [Target(NS, "llama", "premium-llama-13b")], [valid("llama")])
    assert report.outcomes[0].kind == "keep"  # no decision for premium-llama-13b in that plan
    report = await act(
        cluster, [Target(NS, "llama", "premium-llama-13b")], [valid("premium-llama-13b")]
    )
    assert report.outcomes[0].patched
    assert stored(emulator, DEPLOY, NS, "llama")["spec"]["replicas"] == 4


# -- stale plans ----------------------------------------------------------------------------------


async def test_a_plan_older_than_the_last_applied_one_is_refused(
    emulator: kmock_lib.KubernetesEmulator, cluster: KubeCluster
) -> None:
    newer = managed("newer", annotations={L.CYCLE: "5.c5"})
    older = managed("older", annotations={L.CYCLE: "2.c2"})
    same = managed("same", annotations={L.CYCLE: "3.c3"})  # the same cycle, sent again
    garbled = managed("garbled", annotations={L.CYCLE: "not-a-cycle"})
    bare = managed("bare")
    del bare["metadata"]["annotations"]  # no annotations at all: the patch creates the map
    seed(emulator, newer, older, same, garbled, bare)
    names = ["bare", "garbled", "newer", "older", "same"]
    report = await act(
        cluster,
        [Target(NS, n, n) for n in names],
        [valid(n) for n in names],
        cycle=stamp(3),
    )
    outcomes = by_name(report)
    assert_refused(outcomes["newer"], "a newer plan", "cycle c5", "sequence 5")
    assert_untouched(emulator, newer)
    assert stored(emulator, DEPLOY, NS, "newer")["metadata"]["annotations"][L.CYCLE] == "5.c5"

    for name in ["older", "same", "garbled", "bare"]:
        o = outcomes[name]
        assert o.patched, o
        got = stored(emulator, DEPLOY, NS, name)
        assert got["metadata"]["annotations"][L.CYCLE] == "3.c3"
        assert got["spec"]["replicas"] == 4
        [req] = deployment_patches(emulator, NS, name)
        cycle_ops = [op for op in req.data if op["path"].startswith("/metadata/annotations")]
        assert cycle_ops == [req.data[-1]]  # one op, the last
    assert [op for op in deployment_patches(emulator, NS, "older")[0].data][-1] == {
        "op": "add",
        "path": CYCLE_PATH,
        "value": "3.c3",
    }
    # without an annotation map, the whole map is added (other annotations: none to lose)
    assert deployment_patches(emulator, NS, "bare")[0].data[-1] == {
        "op": "add",
        "path": "/metadata/annotations",
        "value": {L.CYCLE: "3.c3"},
    }
    assert stored(emulator, DEPLOY, NS, "older")["metadata"]["annotations"] == {
        **older["metadata"]["annotations"],
        L.CYCLE: "3.c3",
    }

    # the older plan (sequence 2) now finds cycle 3 everywhere it applied: all refused
    emulator_patches = len(emulator["patch"])
    report = await act(
        cluster,
        [Target(NS, n, n) for n in names],
        [valid(n, replicas=1) for n in names],
        cycle=stamp(2),
    )
    assert {o.deployment: o.kind for o in report.outcomes} == dict.fromkeys(names, "refused")
    assert len(emulator["patch"]) == emulator_patches


# -- the deadline ---------------------------------------------------------------------------------


async def test_after_the_deadline_nothing_more_is_applied(
    emulator: kmock_lib.KubernetesEmulator, cluster: KubeCluster
) -> None:
    objs = {n: managed(n) for n in ["a", "b", "c"]}
    seed(emulator, *objs.values())
    deadline = 1_000.0

    def clock() -> float:
        """The deadline passes as soon as the first Deployment was patched."""
        patched = len(emulator["patch", emulator.resource(DEPLOY)])
        return deadline + 1.0 if patched else deadline - 5.0

    report = await act(
        cluster,
        [Target(NS, n, n) for n in ["c", "a", "b"]],
        [valid(n) for n in objs],
        cycle=stamp(1, deadline=deadline),
        clock=clock,
    )
    assert [(o.deployment, o.kind) for o in report.outcomes] == [
        ("a", "update"),
        ("b", "skipped"),
        ("c", "skipped"),
    ]
    assert report.outcomes[0].patched
    for o in report.outcomes[1:]:
        assert (o.applied, o.patched) == (False, False)
        assert "deadline" in o.error
        assert_untouched(emulator, objs[o.deployment])
    assert report.ok is False
    assert report.to_json()["updated"] == 1 and report.to_json()["failed"] == 2
    assert len(emulator["patch"]) == 1


async def test_a_plan_past_its_deadline_touches_nothing(
    emulator: kmock_lib.KubernetesEmulator, cluster: KubeCluster
) -> None:
    objs = {n: managed(n) for n in ["a", "b"]}
    seed(emulator, *objs.values())
    report = await act(
        cluster,
        [Target(NS, n, n) for n in objs],
        [valid(n) for n in objs],
        cycle=stamp(1, deadline=100.0),
        clock=lambda: 100.5,
    )
    assert {o.deployment: o.kind for o in report.outcomes} == {"a": "skipped", "b": "skipped"}
    assert list(emulator) == []  # not even read


# -- decisions the static data does not allow -----------------------------------------------------


def bad_decisions() -> dict[str, tuple[Decision, str]]:
    """server -> (a decision the static data refuses, a fragment of the reason)."""
    h100 = valid("x")

    def bad(server: str, **changes: Any) -> Decision:
        fields = {
            "accelerator": h100.accelerator,
            "replicas": h100.replicas,
            "max_batch": h100.max_batch,
            "gpus_per_replica": h100.gpus_per_replica,
            "node_selector": dict(h100.node_selector),
            **changes,
        }
        return Decision(server=server, **fields)

    return {
        "unknown-acc": (
            bad("unknown-acc", accelerator="Z9000", node_selector={PRODUCT: "Z9000"}),
            "accelerator 'Z9000' is not in the static data",
        ),
        "no-profile": (  # llama_70b has no profile on A100 (its Deployment runs llama_70b)
            bad("no-profile", accelerator="A100", node_selector={PRODUCT: "A100"}),
            "model 'llama_70b' has no profile on accelerator 'A100'",
        ),
        "gpus-off": (bad("gpus-off", gpus_per_replica=2), "gpusPerReplica 2 differs"),
        "gpus-huge": (bad("gpus-huge", gpus_per_replica=64), "gpusPerReplica 64 differs"),
        "hostname": (
            bad("hostname", node_selector={PRODUCT: "H100", "kubernetes.io/hostname": "node-7"}),
            "nodeSelector",
        ),
        "hostname-only": (
            bad("hostname-only", node_selector={"kubernetes.io/hostname": "node-7"}),
            "is not the accelerator's",
        ),
        "wrong-product": (bad("wrong-product", node_selector={PRODUCT: "A100"}), "nodeSelector"),
        "huge-batch": (bad("huge-batch", max_batch=10**6), "maxBatch 1000000 outside 1..32"),
        "zero-batch": (bad("zero-batch", max_batch=0), "maxBatch 0 outside 1..32"),
        "too-many": (bad("too-many", replicas=11), "replicas 11 outside 0..10"),
    }


async def test_invalid_decisions_are_refused_per_deployment(
    emulator: kmock_lib.KubernetesEmulator, cluster: KubeCluster
) -> None:
    bad = bad_decisions()
    originals = {
        name: managed(name, model="llama_70b" if name == "no-profile" else "llama_13b")
        for name in [*bad, "good", "edge", "idle"]
    }
    seed(emulator, *originals.values())
    decisions = [d for d, _ in bad.values()] + [
        valid("good", replicas=3),
        valid("edge", replicas=10, max_batch=32),  # at every limit: allowed
        Decision("idle", allocated=False, reason="no capacity"),  # nothing to check: kept
    ]
    report = await act(
        cluster,
        [Target(NS, n, n) for n in originals],
        decisions,
        cfg=actuator_config([NS], max_replicas=10),
    )
    outcomes = by_name(report)
    for name, (_, why) in bad.items():
        o = outcomes[name]
        assert_refused(o, f"decision for server {name!r}", why)
        assert o.before == o.after == {"replicas": 2, "accelerator": "", "maxBatch": 0}
        assert_untouched(emulator, originals[name], events=True)
        # the refusal is reported on the Deployment itself
        [ev] = events_for(emulator, NS, name)
        assert (ev["reason"], ev["type"]) == ("InfernoRefused", "Warning")
        assert why in ev["message"]

    for name, replicas in [("good", 3), ("edge", 10)]:
        assert outcomes[name].patched, outcomes[name]
        got = stored(emulator, DEPLOY, NS, name)
        assert got["spec"]["replicas"] == replicas
        assert got["metadata"]["labels"][L.ALLOC_ACCELERATOR] == "H100"
        assert got["spec"]["template"]["spec"]["nodeSelector"][PRODUCT] == "H100"
        assert got["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"][GPU] == "1"
        assert got["metadata"]["annotations"][L.CYCLE] == "1.c1"
    assert (outcomes["idle"].kind, outcomes["idle"].error) == ("keep", "")
    assert_untouched(emulator, originals["idle"], events=True)

    summary = report.to_json()
    assert summary["updated"] == 2 and summary["failed"] == len(bad)
    patched = {r.name for r in emulator["patch"]}
    assert patched == {"good", "edge"}


async def test_a_decision_is_checked_against_the_model_read_from_the_api(
    emulator: kmock_lib.KubernetesEmulator, cluster: KubeCluster
) -> None:
    """A decision valid for the model the plan assumes is refused when the Deployment (as the
    API has it now) runs another model: mixtral needs 4 GPUs on H100, llama_13b only 1."""
    obj = managed("chat", model="mixtral_8_7b", replicas=1)
    seed(emulator, obj)
    report = await act(cluster, [Target(NS, "chat", "chat")], [valid("chat", "llama_13b")])
    assert_refused(report.outcomes[0], "gpusPerReplica 1 differs", "mixtral_8_7b on H100")
    assert_untouched(emulator, obj, events=True)
    report = await act(
        cluster, [Target(NS, "chat", "chat")], [valid("chat", "mixtral_8_7b", max_batch=8)]
    )
    assert report.outcomes[0].patched
    got = stored(emulator, DEPLOY, NS, "chat")
    assert got["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"][GPU] == "4"


async def test_the_actuator_reads_the_deployment_not_the_plan(
    emulator: kmock_lib.KubernetesEmulator, cluster: KubeCluster
) -> None:
    """The Deployment changed between collection and actuation (a user set it to recommend
    mode and gave it a max-replicas bound): the actuator goes by what the API says now."""
    obj = managed("llama", replicas=2)
    seed(emulator, obj)
    changed = copy.deepcopy(obj)
    changed["metadata"]["annotations"][L.MAX_REPLICAS] = "3"
    seed(emulator, changed)
    report = await act(cluster, [Target(NS, "llama", "llama")], [valid("llama", replicas=8)])
    assert report.outcomes[0].patched
    assert stored(emulator, DEPLOY, NS, "llama")["spec"]["replicas"] == 3

    changed = stored(emulator, DEPLOY, NS, "llama")
    changed["metadata"]["annotations"][L.MODE] = "recommend"
    seed(emulator, changed)
    n = len(emulator["patch"])
    report = await act(
        cluster, [Target(NS, "llama", "llama")], [valid("llama", replicas=1)], cycle=stamp(2)
    )
    assert report.outcomes[0].kind == "recommend"
    assert len(emulator["patch"]) == n
