"""Derive graded sentence pairs (``scored_pairs.csv``) from ``incidents.jsonl``. Deterministic; rerun after edits.

For every incident's jargon line: its own plain description scores 1.0, two descriptions of other incidents in the
same topic score 0.4 (same failure area, different situation), and two descriptions from other topics of the same
split score 0.0. Pairs keep the incident's topic and split, so splits stay topic-disjoint.

    python data/examples/incidents/make_scored_pairs.py
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
SAME_INCIDENT, SAME_TOPIC, OTHER_TOPIC = 1.0, 0.4, 0.0


def main() -> None:
    items = [json.loads(line) for line in (HERE / "incidents.jsonl").read_text(encoding="utf-8").splitlines()]
    rng = random.Random(13)
    rows = []
    for item in items:
        same = [o for o in items if o["topic"] == item["topic"] and o["id"] != item["id"]]
        other = [o for o in items if o["topic"] != item["topic"] and o["split"] == item["split"]]
        picks = [(item, SAME_INCIDENT)] + [(o, SAME_TOPIC) for o in rng.sample(same, 2)]
        picks += [(o, OTHER_TOPIC) for o in rng.sample(other, 2)]
        rows += [(item["jargon"], o["plain"], score, item["topic"], item["split"]) for o, score in picks]
    with open(HERE / "scored_pairs.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sentence1", "sentence2", "score", "topic", "split"])
        writer.writerows(rows)


if __name__ == "__main__":
    main()
