"""The ``inferno`` command line. Only this package prints.

Exit status: 0 on success, 2 on bad input (an :class:`~inferno.errors.InputError`: one line on
stderr, ``inferno: error: <file>: <path>: <problem>``, never a traceback), 1 when a server it
talks to fails.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import InfernoError, InputError

__all__ = ["main"]

logger = logging.getLogger(__name__)

EXIT_INPUT_ERROR = 2
EXIT_FAILURE = 1


#: allocations between two cyclic garbage collections in a one-shot command (Python: 700)
ONE_SHOT_GC_THRESHOLD = 50_000

#: the modules of this package that define commands, in the order ``--help`` lists them
COMMAND_MODULES = (
    "optimize",
    "analyze",
    "explain",
    "recipe",
    "serve",
    "simulate",
    "load",
    "profile",
)
#: the module of each command (``serve`` defines several)
COMMANDS = {
    "optimize": "optimize",
    "analyze": "analyze",
    "explain": "explain",
    "recipe": "recipe",
    "collector": "serve",
    "optimizer": "serve",
    "actuator": "serve",
    "controller": "serve",
    "run": "serve",
    "simulate": "simulate",
    "load": "load",
    "profile": "profile",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of ``command`` alone: a command imports only its own
    module (the others' imports — asyncio, the settings, YAML — were 0.1 s of every run)."""
    parser = argparse.ArgumentParser(
        prog="inferno",
        description="Keep inference servers inside their SLOs at the lowest GPU cost.",
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)"
    )
    parser.add_argument("--version", action="version", version=f"inferno {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in (COMMANDS[command],) if command in COMMANDS else COMMAND_MODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        getattr(module, "add_parsers" if name == "serve" else "add_parser")(sub)
    return parser


def _command(argv: Sequence[str]) -> str | None:
    """The command named in ``argv``: its first word that is not an option (the options
    before a command take no value)."""
    return next((a for a in argv if not a.startswith("-")), None)


def _one_line(message: object) -> str:
    """A message on one line (a problem quoting a file's text may hold line breaks)."""
    return " ".join(part.strip() for part in str(message).splitlines() if part.strip())


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    command = _command(words)
    if COMMANDS.get(command or "") != "serve":
        # a one-shot command makes a great many objects that reference counting frees: a
        # cyclic collection every 50,000 allocations instead of 700 (about 4% of a 2,700-server
        # optimize); the services keep Python's default
        gc.set_threshold(ONE_SHOT_GC_THRESHOLD, *gc.get_threshold()[1:])
    parser = build_parser(command)
    args = parser.parse_args(words)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        code: int = args.func(args)
    except InputError as err:
        print(f"inferno: error: {_one_line(err)}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except InfernoError as err:  # a server we talk to failed (Triton, Prometheus...)
        print(f"inferno: error: {_one_line(err)}", file=sys.stderr)
        return EXIT_FAILURE
    except BrokenPipeError:
        return 0
    except (RecursionError, MemoryError) as err:  # the input checks should have caught it
        logger.debug("out of resources", exc_info=True)
        kind = "memory" if isinstance(err, MemoryError) else "recursion depth"
        print(f"inferno: error: the input is too large to process (out of {kind})", file=sys.stderr)
        return EXIT_INPUT_ERROR
    return code
