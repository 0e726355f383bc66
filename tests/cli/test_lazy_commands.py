"""A command imports its own module only: every command is still known to the full parser,
and ``optimize`` loads none of the other commands' stacks (asyncio, YAML, the settings)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from inferno.cli import COMMAND_MODULES, COMMANDS, build_parser, main

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "large"


def commands(parser: argparse.ArgumentParser) -> list[str]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return list(sub.choices)


def test_every_command_has_its_module() -> None:
    assert sorted(commands(build_parser())) == sorted(COMMANDS)
    assert set(COMMANDS.values()) == set(COMMAND_MODULES)
    for name, module in COMMANDS.items():
        assert name in commands(build_parser(name))
        assert all(COMMANDS[c] == module for c in commands(build_parser(name)))


def test_optimize_loads_no_other_commands_stack() -> None:
    code = (
        "import sys, io, contextlib; from inferno.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    main(['-v', 'optimize', {str(SAMPLE)!r}, '--format', 'json'])\n"
        "print(sorted(m for m in ('asyncio', 'yaml', 'inferno.settings', 'inferno.cli.profile',"
        " 'inferno.cli.serve', 'fastapi', 'numpy.ma') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_simulate_loads_no_kubernetes_client(tmp_path: Path) -> None:
    """The emulated cluster needs the adapter's errors, not the client behind it (~0.3 s)."""
    demo = ROOT / "samples" / "scenarios" / "demo.yaml"
    code = (
        "import sys; import inferno.k8s\n"
        "from inferno.simulate import load_scenario, run_scenario, build_report\n"
        "import inferno.cli.simulate, inferno.simulate.policies, inferno.control.cycle\n"
        f"load_scenario({str(demo)!r})\n"
        "print('kubernetes' in sys.modules)\n"
        "inferno.k8s.KubeCluster  # the client, loaded on first use\n"
        "print('kubernetes' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]


def test_help_and_errors_still_list_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["nosuch"])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert all(repr(c) in err for c in COMMANDS)
    with pytest.raises(SystemExit) as done:
        main(["optimize", "--help"])
    assert done.value.code == 0
    assert "--queue-factor" in capsys.readouterr().out
