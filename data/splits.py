"""Grouped, seeded splits: rows that share a group key or any text land on the same side."""

from __future__ import annotations

import random
from collections.abc import Iterable

from datasets import Dataset

from configs.errors import UserError
from data.checks import comparable, text_columns


def components(rows: Dataset) -> list[int]:
    """Component id per row: rows are joined when they share their ``group`` value or any text, compared as
    ``data.checks.comparable`` compares them (union-find)."""
    parent = list(range(len(rows)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_seen: dict[tuple[str, str], int] = {}
    keyed = text_columns(rows.column_names) + ["group"]
    for column in keyed:
        space = "group" if column == "group" else "text"  # a text joins rows whichever column it sits in
        for index, value in enumerate(rows[column]):
            key = (space, comparable(value) if space == "text" else str(value).strip())
            if key in first_seen:
                parent[find(index)] = find(first_seen[key])
            else:
                first_seen[key] = index
    return [find(i) for i in range(len(rows))]


def grouped_split(rows: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """Hold out about ``fraction`` of the rows, whole components at a time. Returns (kept, held_out)."""
    ids = components(rows)
    unique = sorted(set(ids))
    random.Random(seed).shuffle(unique)
    target, held, count = fraction * len(rows), set(), 0
    sizes: dict[int, int] = {}
    for component in ids:
        sizes[component] = sizes.get(component, 0) + 1
    for component in unique:
        if count >= target:
            break
        held.add(component)
        count += sizes[component]
    held_rows = [i for i, c in enumerate(ids) if c in held]
    kept_rows = [i for i, c in enumerate(ids) if c not in held]
    if not kept_rows or not held_rows:
        raise UserError(
            f"Cannot hold out {fraction:.0%} of the rows: shared texts and groups join them into {len(unique)} "
            "group(s) that cannot be divided. Give separate test data (data.test) or a group_column with more groups."
        )
    return rows.select(kept_rows), rows.select(held_rows)


def shared_texts(a: Dataset, b: Dataset) -> set[str]:
    """Texts present in both datasets (any text column, as ``comparable`` gives them): the leakage a grouped split
    prevents."""

    def texts(rows: Dataset) -> set[str]:
        return {comparable(v) for c in text_columns(rows.column_names) for v in rows[c]}

    return texts(a) & texts(b)


def held_out_queries(held: Dataset, row_less: Iterable[str], fraction: float, seed: int) -> set[str]:
    """Query ids on the held-out side of a split of BEIR pairs: those of its rows (a query's rows never straddle a
    split: they share their group), and each query without rows (``Table.extra_queries``) with probability
    ``fraction``, by a draw seeded with ``seed`` and the query id, so a seed always gives the same split."""
    ids = set(held["anchor_id"]) if "anchor_id" in held.column_names else set()
    return ids | {q for q in row_less if random.Random(f"{seed}:{q}").random() < fraction}
