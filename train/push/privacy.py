"""What a publish shows of the data: nothing verbatim unless ``push.card_examples=true`` (domain data can be private).

- The evaluation reports published beside the model keep every number but lose the texts: the leakage examples
  (texts shared with the training split) and the per-query/per-pair details the HTML report draws from.
- A last check reads the run's prepared training and dev splits and refuses a card that still holds one of their
  texts verbatim (a future sentence-transformers card could add a section of examples that we do not yet remove).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from configs.errors import UserError
from evaluate.report.html import html_report
from evaluate.report.writers import report_markdown

MIN_CHECKED = 24  # characters: shorter texts ("disk full") can appear in any card by chance


def public_reports(eval_dir: Path, report: dict, examples: bool) -> dict[str, str]:
    """name -> text of report.json, report.md and report.html as published: as evaluated with ``examples``, else
    rebuilt from the numbers alone."""
    if examples:
        return {name: (eval_dir / name).read_text(encoding="utf-8") for name in ("report.json", "report.md",
                                                                               "report.html")
                if (eval_dir / name).is_file()}
    numbers = without_texts(report)
    return {"report.json": json.dumps(numbers, indent=2, allow_nan=False) + "\n",
            "report.md": report_markdown(numbers), "report.html": html_report(numbers, {})}


def without_texts(report: dict) -> dict:
    """A copy of ``report`` without the texts its leakage check quotes: the shared texts and the near-duplicate
    pairs (each pairs an evaluated text with a training text)."""
    numbers = copy.deepcopy(report)
    for info in (numbers.get("leakage") or {}).values():
        info["examples"] = []
        if isinstance(info.get("near_duplicates"), dict):
            info["near_duplicates"]["examples"] = []
    return numbers


def training_texts(data_dir: Path) -> dict[str, str]:
    """text -> where it is (``data/train.jsonl line 3``) for every text of at least ``MIN_CHECKED`` characters."""
    found: dict[str, str] = {}
    for split in ("train", "dev"):
        path = data_dir / f"{split}.jsonl"
        if not path.is_file():
            continue
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                for value in json.loads(line).values():
                    if isinstance(value, str) and len(value.strip()) >= MIN_CHECKED:
                        found.setdefault(value.strip(), f"{path} line {number}")
    return found


def check_no_training_text(published: dict[str, str], data_dir: Path) -> None:
    """Refuse to publish texts (file name -> text: the card, the reports) holding a training text verbatim when
    ``push.card_examples`` is off."""
    for text, where in training_texts(data_dir).items():
        for name, content in published.items():
            if text in content:
                raise UserError(f"The published {name} would show a training text verbatim ({where}) although "
                                "push.card_examples=false. Publish with push.card_examples=true if the data may be "
                                "public; otherwise report this as an embtune bug (the sentence-transformers card "
                                "gained a section of examples that push does not remove).")
