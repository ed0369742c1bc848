"""``RUN_DIR/eval/`` as one set: each command that writes there (``python -m evaluate``, ``python -m evaluate merge``)
builds a complete new folder beside it and swaps it in at once (``configs.runs.atomic_dir``), so an interruption
leaves the old evaluation or the new one, never report.json of one run beside report.html of another.

What a command does not write itself is carried over from the old folder: the ONNX/OpenVINO exports, files a
person put there, and, for ``python -m evaluate``, the merge frontier when it interpolated the same tuned model.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from evaluate.report.html import same_tuned_model
from evaluate.report.writers import read_json

REPORT_FILES = ("report.json", "details.json", "units.json", "report.md", "report.html")  # python -m evaluate
MERGE_FILES = ("merge.json", "merge.md", "merge.svg")  # python -m evaluate merge


def keep_beside_report(eval_dir: Path, report: dict) -> Callable[[Path], bool]:
    """Which entries of the old ``eval_dir`` a new report keeps: everything but the report's own files, and the
    merge files only while merge.json interpolated the tuned model ``report`` evaluated (a stale frontier goes)."""
    merge_valid = same_tuned_model(read_json(eval_dir / "merge.json"), report)
    return lambda item: item.name not in REPORT_FILES and (item.name not in MERGE_FILES or merge_valid)


def keep_beside_merge(item: Path) -> bool:
    """A new merge frontier keeps every entry of the old eval/ but the merge files it replaces."""
    return item.name not in MERGE_FILES
