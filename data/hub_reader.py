"""Hugging Face Hub datasets: the real code path for users online, with a clear error when offline."""

from __future__ import annotations

import pandas as pd

from configs.errors import UserError
from configs.schema import SourceConfig


def read_hub(source: SourceConfig, role: str) -> pd.DataFrame:
    """``datasets.load_dataset(path, subset, split=..., revision=...)`` as a DataFrame."""
    from datasets import load_dataset

    if source.split is None:
        raise UserError(f"{role}.split must name the Hub dataset's split (e.g. train).")
    try:
        dataset = load_dataset(source.path, source.subset, split=source.split, revision=source.revision)
    except Exception as err:  # noqa: BLE001 - datasets raises many types for "unreachable" and "not found"
        raise UserError(
            f"{role}: could not load Hub dataset '{source.path}' (split {source.split}): {type(err).__name__}: "
            f"{str(err)[:300]}. Without network, download it elsewhere and point {role}.path at a local "
            "CSV/JSONL/Parquet file or BEIR folder."
        ) from None
    return dataset.to_pandas()
