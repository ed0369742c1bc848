"""Progress bars on a terminal only: a log file gets plain lines, each once, and never a bar's redraws.

The libraries draw tqdm bars whatever stderr is (mining's encode, the model card's "Computing widget examples",
weight loading). ``TQDM_DISABLE`` only reaches bars of modules imported after it is set, which the entry points'
imports are not, so the bars' output is filtered instead: tqdm redraws a bar with a carriage return, a log line has
none.
"""

from __future__ import annotations

import contextlib
import io
import sys


class DropRedraws(io.TextIOBase):
    """A stream that passes text on to ``target`` except tqdm's redraws (anything with a carriage return) and the
    newline that closes a bar."""

    def __init__(self, target) -> None:
        self.target, self.after_bar = target, False

    def write(self, text: str) -> int:
        bar = "\r" in text or text == "" or (self.after_bar and text == "\n")
        if not bar:
            self.target.write(text)
        self.after_bar = "\r" in text
        return len(text)

    def flush(self) -> None:
        self.target.flush()

    def isatty(self) -> bool:
        return False


def bars_on_terminal_only():
    """A context in which tqdm bars (the libraries', the model loader's) reach stderr only if it is a terminal."""
    return contextlib.nullcontext() if sys.stderr.isatty() else contextlib.redirect_stderr(DropRedraws(sys.stderr))
