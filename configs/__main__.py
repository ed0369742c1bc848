"""``python -m configs [CONFIG ...]``: validate configs, or ``--markdown`` to print the README's key table."""

from __future__ import annotations

import sys

from configs.cli import markdown_table, run
from configs.load import load_config


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--markdown"]:
        print(markdown_table())
        return 0
    for path in args:
        load_config(path)
        print(f"{path}: valid")
    return 0


if __name__ == "__main__":
    sys.exit(run(lambda: main()))
