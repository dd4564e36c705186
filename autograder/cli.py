"""Command line of the grader: ``python -m autograder {release,grade,serve,demo,report,lti}``.

Each subcommand lives in its own module with ``add_arguments(parser)`` and
``run(args) -> int``.  Errors a person can fix (a missing folder, a wrong
assignment name, no sandbox) end with one line on stderr and exit status 2,
never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from autograder.errors import UsageError

SUBCOMMANDS = {
    "release": ("autograder.commands.release",
                "build release/ from source/ and check it leaks nothing"),
    "grade": ("autograder.commands.grade", "grade every submission of an assignment"),
    "serve": ("autograder.commands.serve",
              "grade submissions as they arrive in the exchange (the grading service)"),
    "demo": ("autograder.commands.demo", "build, hand out and grade a sample class"),
    "report": ("autograder.commands.report",
               "the class view (named bugs, scores, times) and the similarity report"),
    "lti": ("autograder.commands.lti", "the tool's LTI 1.3 key pair and its public JWKS"),
}


class Parser(argparse.ArgumentParser):
    """argparse's parser whose errors are one line on stderr (exit status 2)."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s module is imported (a broken one can't block the rest)."""
    parser = Parser(prog="python -m autograder", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            importlib.import_module(module).add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in SUBCOMMANDS else None)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error, already printed (2)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: what was recorded so far is kept; run again to resume",
              file=sys.stderr)
        return 130
