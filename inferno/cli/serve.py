"""``inferno collector|optimizer|actuator|controller``: serve one of the pod's four containers;
``inferno run --all-in-one``: the whole control plane in one process, for a laptop.

Every service reads :meth:`Settings.from_env`; a bad setting, or no cluster credentials, stops
it at start-up with a one-line error (exit status 2).

The web stack, the cluster client and kopf are imported only when a service starts, so the other
subcommands start as fast as before.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..settings import Settings, SettingsError

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from ..control.leader import LeaderElector
    from ..k8s import KubeCluster

__all__ = ["add_parsers"]

EXIT_START_ERROR = 2


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for name, help_text, needs_cluster in (
        ("collector", "serve GET /collect (port COLLECTOR_PORT, 3301)", True),
        ("optimizer", "serve POST /optimize (port INFERNO_PORT, 3302)", False),
        ("actuator", "serve POST /update (port ACTUATOR_PORT, 3303)", True),
        ("controller", "serve /invoke and run the periodic cycle (CONTROLLER_PORT, 3300)", True),
    ):
        p = sub.add_parser(name, help=help_text)
        if needs_cluster:
            p.add_argument(
                "--kubeconfig", default=None, help="kubeconfig file (default: in-cluster)"
            )
        if name == "controller":
            p.add_argument(
                "--no-operator",
                action="store_true",
                help="do not run the ServiceClass operator (validation status) in this process",
            )
        p.set_defaults(func=_SERVE[name])

    run = sub.add_parser(
        "run", help="run the whole control plane in one process (laptop, kubeconfig)"
    )
    run.add_argument(
        "--all-in-one",
        action="store_true",
        required=True,
        help="controller, collector, optimizer, actuator and the ServiceClass operator",
    )
    run.add_argument("--kubeconfig", default=None, help="kubeconfig file (default: KUBECONFIG)")
    run.add_argument(
        "--host", default=None, help="address to bind (default: INFERNO_BIND_HOST, 127.0.0.1)"
    )
    run.add_argument("--port", type=int, default=None, help="controller port (CONTROLLER_PORT)")
    run.add_argument("--data-path", default=None, help="static data directory (INFERNO_DATA_PATH)")
    run.add_argument(
        "--period",
        type=float,
        default=None,
        help="seconds between cycles; 0: only on /invoke (INFERNO_CONTROL_PERIOD)",
    )
    run.set_defaults(func=run_all_in_one)


def _fail(message: str) -> int:
    print(f"inferno: error: {message}", file=sys.stderr)
    return EXIT_START_ERROR


def _start(args: argparse.Namespace, build: Callable[[Settings], int]) -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        return _fail(str(exc))
    from ..errors import InputError
    from ..k8s import ClusterError

    try:
        return build(settings)
    except (SettingsError, ClusterError, InputError) as exc:
        return _fail(str(exc))


def _cluster(args: argparse.Namespace) -> KubeCluster:
    from ..k8s import connect

    kubeconfig: str | None = getattr(args, "kubeconfig", None)
    if kubeconfig is not None:
        # kopf's kubeconfig login reads the variable; every client then agrees on the file
        os.environ["KUBECONFIG"] = kubeconfig
    return connect(kubeconfig)


def _serve(app: Any, host: str, port: int, on_shutdown: Callable[[], object] | None = None) -> int:
    """Serve until SIGINT/SIGTERM. ``on_shutdown`` runs once the app has shut down, before
    uvicorn re-raises the signal that stopped it (after which no ``finally`` would run)."""
    import asyncio
    import socket

    import uvicorn

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            await super().shutdown(sockets=sockets)
            if on_shutdown is not None:
                await asyncio.to_thread(on_shutdown)

    Server(uvicorn.Config(app, host=host, port=port, log_level="info")).run()
    return 0


def _metrics_port(settings: Settings, registry: CollectorRegistry) -> None:
    """A sibling's metrics-only port (INFERNO_METRICS_PORT) on every interface, in a thread."""
    if settings.ports.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.ports.metrics_port, addr="0.0.0.0", registry=registry)


def serve_collector(args: argparse.Namespace) -> int:
    from ..prom import source_from_settings
    from ..services import collector
    from ..services._auth import internal_token
    from ..services._common import new_registry

    def build(settings: Settings) -> int:
        registry = new_registry()
        app = collector.create_app(
            settings,
            api=_cluster(args),
            token=internal_token(settings),
            registry=registry,
            load_source=source_from_settings(settings),
        )
        _metrics_port(settings, registry)
        return _serve(app, settings.ports.bind_host, settings.ports.collector_port)

    return _start(args, build)


def serve_optimizer(args: argparse.Namespace) -> int:
    from ..services import optimizer
    from ..services._auth import internal_token
    from ..services._common import new_registry

    def build(settings: Settings) -> int:
        registry = new_registry()
        app = optimizer.create_app(settings, token=internal_token(settings), registry=registry)
        _metrics_port(settings, registry)
        return _serve(app, settings.ports.bind_host, settings.ports.optimizer_port)

    return _start(args, build)


def serve_actuator(args: argparse.Namespace) -> int:
    from ..services import actuator
    from ..services._auth import internal_token
    from ..services._common import new_registry

    def build(settings: Settings) -> int:
        registry = new_registry()
        app = actuator.create_app(
            settings, api=_cluster(args), token=internal_token(settings), registry=registry
        )
        _metrics_port(settings, registry)
        return _serve(app, settings.ports.bind_host, settings.ports.actuator_port)

    return _start(args, build)


def _elector(settings: Settings, api: KubeCluster) -> LeaderElector | None:
    from ..control.leader import LeaderElector, default_identity

    if not settings.leader.leader_election:
        return None
    return LeaderElector(
        api,
        settings.service.namespace,
        settings.leader.lease_name,
        settings.leader.identity or default_identity(),
        duration=settings.leader.lease_duration,
    )


def _with_operator(
    settings: Settings,
    args: argparse.Namespace,
    serve: Callable[[Callable[[], list[str]], Callable[[], object] | None], int],
    enabled: bool = True,
) -> int:
    """Run ``serve(live, on_shutdown)`` with the ServiceClass operator thread alongside;
    ``live()`` says whether that thread still runs (the liveness probe)."""
    from ..k8s.operator import OperatorThread, start_operator_thread

    operator: OperatorThread | None = None
    if enabled:
        operator = start_operator_thread(settings, kubeconfig=getattr(args, "kubeconfig", None))

    def live() -> list[str]:
        if operator is None or operator.alive:
            return []
        why = f": {type(operator.error).__name__}: {operator.error}" if operator.error else ""
        return [f"the ServiceClass operator thread has stopped{why}"]

    try:
        return serve(live, None if operator is None else operator.stop)
    finally:
        if operator is not None:
            operator.stop()  # again, if the server stopped some other way (idempotent)


def serve_controller(args: argparse.Namespace) -> int:
    from ..services import controller
    from ..services._auth import internal_token
    from ..services.phases import Phases

    def build(settings: Settings) -> int:
        api = _cluster(args)
        phases = Phases(settings, token=internal_token(settings))

        def serve(live: Callable[[], list[str]], stop: Callable[[], object] | None) -> int:
            app = controller.create_app(
                settings, phases=phases, api=api, elector=_elector(settings, api), live=live
            )
            return _serve(
                app, settings.ports.controller_bind_host, settings.ports.controller_port, stop
            )

        return _with_operator(settings, args, serve, enabled=not args.no_operator)

    return _start(args, build)


def run_all_in_one(args: argparse.Namespace) -> int:
    """One process: the controller on ``--port``, whose phases call in-process collector,
    optimizer and actuator apps over :class:`httpx.ASGITransport` (the pod's code path), plus
    the ServiceClass operator thread."""
    from ..control.optimize import read_static_data
    from ..prom import source_from_settings
    from ..services import actuator, collector, controller, optimizer
    from ..services._auth import internal_token
    from ..services._common import new_registry
    from ..services.phases import Phases

    def build(settings: Settings) -> int:
        overrides: dict[str, Any] = {}
        if args.port is not None:
            overrides["controller_port"] = args.port
        if args.data_path is not None:
            overrides["data_path"] = args.data_path
        if args.period is not None:
            overrides["control_period"] = args.period
        host = args.host if args.host is not None else settings.ports.bind_host
        settings = settings.with_overrides(**overrides)
        read_static_data(
            settings.service.data_path
        )  # a wrong --data-path fails now (InputError: exit 2)
        api = _cluster(args)
        token = internal_token(settings, in_process=True)
        registry = new_registry()  # one registry: the controller's /metrics shows all four
        phases = Phases.in_process(
            settings,
            token=token,
            collector=collector.create_app(
                settings,
                api=api,
                token=token,
                registry=registry,
                load_source=source_from_settings(settings),
            ),
            optimizer=optimizer.create_app(settings, token=token, registry=registry),
            actuator=actuator.create_app(settings, api=api, token=token, registry=registry),
        )

        def serve(live: Callable[[], list[str]], stop: Callable[[], object] | None) -> int:
            app = controller.create_app(
                settings,
                phases=phases,
                api=api,
                registry=registry,
                elector=_elector(settings, api),
                live=live,
            )
            return _serve(app, host, settings.ports.controller_port, stop)

        return _with_operator(settings, args, serve)

    return _start(args, build)


_SERVE: dict[str, Callable[[argparse.Namespace], int]] = {
    "collector": serve_collector,
    "optimizer": serve_optimizer,
    "actuator": serve_actuator,
    "controller": serve_controller,
}
