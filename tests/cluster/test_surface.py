"""inferno.cluster re-exports its public names, loaded on first use."""

from __future__ import annotations

import subprocess
import sys

import inferno.cluster as cluster


def test_every_exported_name_resolves() -> None:
    for name in cluster.__all__:
        assert getattr(cluster, name) is not None, name


def test_importing_the_labels_does_not_load_the_solver() -> None:
    code = "import sys, inferno.cluster.labels; print('inferno.solver' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
