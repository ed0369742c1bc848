"""Which evaluated sets are forgetting checks (general sets): read by the push gate, the card and the merge frontier."""

from __future__ import annotations

from pathlib import Path

from configs.schema import RunConfig


def general_names(config: RunConfig) -> set[str]:
    """The configured general sets: ``general: true``, or by default every set with its own ``source``."""
    return {d.name for d in config.evaluate.datasets if (d.source is not None if d.general is None else d.general)}


def forgetting_sets(config: RunConfig, report: dict) -> list[str]:
    """Evaluated general sets (other than the primary one): those ``general_names`` configures, and a set evaluated
    with an override the config does not name when its recorded ``source`` lies outside the run's prepared splits
    (``RUN_DIR/data``)."""
    own = general_names(config)
    splits = {d.name for d in config.evaluate.datasets if d.name not in own} or {"test"}
    data_dir = Path(report.get("run_dir") or config.run_dir) / "data"
    names = []
    for name, info in report["datasets"].items():
        outside = not Path(str(info.get("source", ""))).is_relative_to(data_dir)
        if name != report["primary"]["dataset"] and (name in own or (name not in splits and outside)):
            names.append(name)
    return names
