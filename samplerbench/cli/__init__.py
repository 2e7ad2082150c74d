"""The command line, the only module that parses arguments (and that nothing else imports):

- ``samplerbench [run] [flags]`` (== ``python bench.py [flags]``): a benchmark run (``--list`` lists names);
- ``samplerbench compare DIR...``: mean ± std of several runs (:mod:`samplerbench.report.compare`);
- ``samplerbench select --checkpoint PATH -k K VIDEO...``: frames of new videos chosen by a trained sampler;
- ``samplerbench preview OUT.png``, ``samplerbench doctor``.

One module per subcommand, each with its ``HELP``, ``add_flags(parser)`` and ``command(args)``; this package's
:func:`main` parses, dispatches and is the error boundary.

User mistakes and environment faults end with one line on stderr and exit status 2; only bugs print a traceback."""

from __future__ import annotations

import argparse
import codecs
import signal
import sys
import threading

from samplerbench.cli import compare, doctor, preview, run, select
from samplerbench.cli.parsing import ArgumentParser, CommandLine
from samplerbench.cli.run import config_from_args
from samplerbench.core.errors import EnvironmentFault, UserError, environment_error

SUBCOMMANDS = """subcommands:
  samplerbench [run] [flags]
      a benchmark run, with the flags above ("run" may be left out)
  samplerbench compare DIR... [--out FILE]
      mean ± std of several runs (seeds, machines) per sampler and budget
  samplerbench select --checkpoint PATH -k K VIDEO...
      choose K frames of new videos with a trained sampler; prints JSON
  samplerbench preview OUT.png [--preset P] [--seed S] [--index N] [--frames F]
      a few labelled frames (salient and not) of one synthetic video, as a PNG
  samplerbench doctor [--device D] [--compile] [--decoder X]
      check every kind of stage on this machine's device, on tiny generated data (run it first)
(each takes --help)"""
DESCRIPTION = "Train and compare frame samplers for efficient untrimmed-video recognition."
# subcommand -> its module (HELP, add_flags, command; AFTER_FAULT where a fault's fix is followed by a re-run)
COMMANDS = {"run": run, "compare": compare, "select": select, "preview": preview, "doctor": doctor}


def build_parser() -> CommandLine:
    """Every subcommand's parser; ``parse_args`` gives a namespace whose ``command`` names the :data:`COMMANDS`
    entry that runs it. ``run``'s parser is the top one's face: its help lists the other subcommands."""
    top = CommandLine(prog="samplerbench", description=DESCRIPTION)
    commands = top.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    for name, module in COMMANDS.items():
        if name == "run":
            parser = commands.add_parser(name, prog="samplerbench", help=module.HELP, description=DESCRIPTION,
                                         epilog=SUBCOMMANDS, formatter_class=argparse.RawDescriptionHelpFormatter)
        else:
            parser = commands.add_parser(name, prog=f"samplerbench {name}", help=module.HELP,
                                         description=module.HELP)
        module.add_flags(parser)
    return top


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C's KeyboardInterrupt so that a stopped run unwinds the same way: temporary
    files removed by the ``finally`` blocks that made them, finished stages kept."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def _utf8_where_ascii() -> None:
    """Print UTF-8 where the locale says ASCII (``LC_ALL=C``, ``PYTHONUTF8=0``), as Python's own UTF-8 mode would:
    tables hold ± and names may hold any character, which ASCII cannot encode."""
    for stream in (sys.stdout, sys.stderr):
        encoding = getattr(stream, "encoding", None)
        if encoding and codecs.lookup(encoding).name == "ascii" and hasattr(stream, "reconfigure"):
            stream.reconfigure(encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    _utf8_where_ascii()
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    command = None
    try:
        args = build_parser().parse_args(argv)
        command = args.command
        return COMMANDS[command].command(args)
    except (UserError, OSError) as exc:  # an OSError: e.g. a video encoder's own write on a full disk
        error = exc if isinstance(exc, UserError) else environment_error(exc, action="use")
        if error is None:
            raise
        then = getattr(COMMANDS.get(command), "AFTER_FAULT", "") if isinstance(error, EnvironmentFault) else ""
        print(f"samplerbench: error: {error}{then}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        how, status = ("terminated (SIGTERM)", 128 + signal.SIGTERM) if isinstance(exc, Terminated) else \
            ("interrupted", 130)
        print(f"samplerbench: {how}; completed stages are cached and a re-run resumes from them", file=sys.stderr)
        return status
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


__all__ = ["COMMANDS", "build_parser", "config_from_args", "main"]
