"""``inferno.model`` re-exports the model's public surface, loaded on first use."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import inferno.model as model


def test_every_public_name_is_the_submodules_own() -> None:
    assert sorted(model.__all__) == sorted(model._HOME)
    for name in model.__all__:
        home = importlib.import_module(f"inferno.model.{model._HOME[name]}")
        assert getattr(model, name) is getattr(home, name), name


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = model.no_such_name


def test_star_import_and_dir_list_the_surface() -> None:
    namespace: dict[str, object] = {}
    exec("from inferno.model import *", namespace)
    assert set(model.__all__) <= set(namespace)
    assert set(model.__all__) <= set(dir(model))


def test_the_profiles_alone_do_not_load_the_solvers_machinery() -> None:
    code = (
        "import sys, inferno.system; "
        "print(sorted(m for m in ('inferno.model.points', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
