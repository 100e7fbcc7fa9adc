"""What every command line of the project shares: one exit-code rule, range-checked flags, one-line errors.

Exit codes, the same for every script:
  0    done
  1    anything unexpected (a bug: the traceback is kept so that it can be reported)
  2    bad input: a flag, a file, a folder, a server that refuses; nothing was written
  3    a training run stopped because its losses stayed non-finite
  130  interrupted (Ctrl-C); what was finished is kept and marked so

Flags are checked where they are parsed, before any data is loaded or any folder made:
`Parser` prints one line naming the flag, the value and what is allowed, and exits 2.
"""
import argparse
import math
import sys
from typing import Callable, NoReturn

BAD_INPUT = 2
NONFINITE = 3
INTERRUPTED = 130


class BadInput(SystemExit):
    """Exit 2; str() is the message, so that callers and tests can read what was refused."""

    def __init__(self, message: str):
        super().__init__(BAD_INPUT)
        self.message = message

    def __str__(self) -> str:
        return self.message


def fail(message: str) -> NoReturn:
    """Report bad input on one line and exit 2."""
    print(message, file=sys.stderr)
    raise BadInput(message)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the module docstring's layout and appends each flag's default to its help."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        shown = action.default not in (None, False, "", argparse.SUPPRESS) and action.option_strings
        if shown and "default" not in text:
            text += " (default: %(default)s)"
        return text


def interrupted(message: str) -> NoReturn:
    """Report Ctrl-C (or SIGTERM) on one line, saying what was kept, and exit 130."""
    print(message, file=sys.stderr)
    sys.exit(INTERRUPTED)


class Parser(argparse.ArgumentParser):
    """argparse whose errors are one line (no usage block) and whose --help shows the defaults."""

    def __init__(self, description: str | None = None, **kwargs):
        super().__init__(description=description, formatter_class=HelpFormatter, **kwargs)

    def error(self, message: str) -> NoReturn:
        fail(f"{self.prog}: {message}")


def number(kind: type = int, low: float | None = None, high: float | None = None,
           low_open: bool = False, high_open: bool = False) -> Callable[[str], int | float]:
    """An argparse `type` that accepts an int (or float) within [low, high]; open ends exclude the bound.

    number(int, 1) is a count of at least one; number(float, 0, 1, low_open=True) is a share in (0, 1].
    """
    allowed = []
    if low is not None:
        allowed.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        allowed.append(f"{'<' if high_open else '<='} {high:g}")
    noun = "an integer" if kind is int else "a number"
    rule = f"{noun} {' and '.join(allowed)}" if allowed else noun

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        if not math.isfinite(value) or too_low or too_high:
            raise argparse.ArgumentTypeError(f"{text} is not allowed: must be {rule}")
        return value

    parse.__name__ = rule   # argparse names the type by this in its own messages
    return parse
