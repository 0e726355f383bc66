"""The exception tree drawn in inferno/errors.py is the whole tree: every InfernoError subclass in
the package, each under its parent."""

from __future__ import annotations

import importlib
import pkgutil
import re

import inferno
from inferno import errors
from inferno.errors import InfernoError

# ``python -m inferno`` runs the command line when imported; it defines no exception.
NOT_IMPORTED = {"inferno.__main__"}

_TREE_LINE = re.compile(r"^(?P<prefix>[│├└─ ]*)(?P<name>[A-Z]\w*)\b")


def import_every_module() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(inferno.__path__, "inferno."):
        if info.name not in NOT_IMPORTED:
            importlib.import_module(info.name)
            names.append(info.name)
    return names


def subclasses(cls: type[BaseException]) -> dict[str, str]:
    """Each subclass of ``cls`` (recursively) → the name of its parent in the tree."""
    out: dict[str, str] = {}
    for sub in cls.__subclasses__():
        if not sub.__module__.startswith("inferno"):
            continue
        parent = next(b for b in sub.__bases__ if issubclass(b, InfernoError))
        out[sub.__name__] = parent.__name__
        out.update(subclasses(sub))
    return out


def documented_tree() -> dict[str, str | None]:
    """The tree in errors.py's docstring: each class name → its parent's (None for the root)."""
    doc = errors.__doc__ or ""
    block = doc.split("::\n", 1)[1]
    parents: dict[str, str | None] = {}
    stack: list[str] = []
    for line in block.splitlines():
        if not line.strip():
            continue
        m = _TREE_LINE.match(line[4:])
        assert m, f"not a line of the tree: {line!r}"
        depth = len(m["prefix"]) // 4
        del stack[depth:]
        parents[m["name"]] = stack[-1] if stack else None
        stack.append(m["name"])
    return parents


def test_every_module_imports_without_a_cluster() -> None:
    names = import_every_module()
    assert "inferno.errors" in names and len(names) > 50


def test_the_docstring_draws_every_inferno_error_under_its_parent() -> None:
    import_every_module()
    documented = documented_tree()
    assert documented.pop("InfernoError") is None
    found = subclasses(InfernoError)
    assert set(found) == set(documented), (
        f"undocumented: {sorted(set(found) - set(documented))}, "
        f"documented but absent: {sorted(set(documented) - set(found))}"
    )
    assert found == documented


def test_names_are_unique() -> None:
    """The tree names classes by their bare name: two classes of one name would hide one."""
    import_every_module()

    def walk(cls: type[BaseException]) -> list[str]:
        ours = [s for s in cls.__subclasses__() if s.__module__.startswith("inferno")]
        return [n for s in ours for n in (s.__name__, *walk(s))]

    names = walk(InfernoError)
    assert len(names) == len(set(names)), sorted(names)
