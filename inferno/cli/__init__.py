"""The ``inferno`` command line. Only this package prints.

Exit status: 0 on success, 2 on bad input (an :class:`~inferno.errors.InputError`: one line on
stderr, ``inferno: error: <file>: <path>: <problem>``, never a traceback), 1 when a server it
talks to fails.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import InfernoError, InputError
from . import analyze, explain, load, optimize, profile, serve, simulate

__all__ = ["main"]

logger = logging.getLogger(__name__)

EXIT_INPUT_ERROR = 2
EXIT_FAILURE = 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inferno",
        description="Keep inference servers inside their SLOs at the lowest GPU cost.",
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)"
    )
    parser.add_argument("--version", action="version", version=f"inferno {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    optimize.add_parser(sub)
    analyze.add_parser(sub)
    explain.add_parser(sub)
    serve.add_parsers(sub)
    simulate.add_parser(sub)
    load.add_parser(sub)
    profile.add_parser(sub)
    return parser


def _one_line(message: object) -> str:
    """A message on one line (a problem quoting a file's text may hold line breaks)."""
    return " ".join(part.strip() for part in str(message).splitlines() if part.strip())


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
