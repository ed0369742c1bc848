"""``python -m configs [CONFIG ...]``: validate configs, or ``--markdown`` to print the README's key table.

The README's other generated tables (data kinds, evaluation tasks) are drawn from the loss and evaluator registries,
which sit above ``configs`` in the pipeline, so ``python -m train.docs`` prints those.
"""

from __future__ import annotations

import sys

from configs.cli import markdown_table, run
from configs.load import load_config

USAGE = """usage: python -m configs CONFIG [CONFIG ...]   validate each config (a YAML or a run folder)
       python -m configs --markdown              print the README's config key table
The README's data kinds and evaluation tasks tables: python -m train.docs kinds-table | tasks-table"""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    if args[:1] == ["--markdown"]:
        print(markdown_table())
        return 0
    for path in args:
        load_config(path)
        print(f"{path}: valid")
    return 0


if __name__ == "__main__":
    sys.exit(run(lambda: main()))
