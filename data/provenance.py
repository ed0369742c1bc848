"""What ``RUN_DIR/data/`` was prepared from, and whether a config still gives the same rows.

``python -m data`` records in ``data/meta.json`` the settings that change the prepared rows (``data_settings``) and
a content hash of every source (``source_fingerprints``). ``python -m train`` reads ``data/`` as it is when both
still match its config (``stale_reason`` is None), so hard negatives are mined once; otherwise it prepares again
and says which setting or source changed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from configs.runs import sha256_file
from configs.schema import RunConfig, SourceConfig

ROLES = ("train", "dev", "test")


def data_settings(config: RunConfig) -> dict[str, object]:
    """Flat ``dotted.key -> value`` of everything that changes the prepared rows or their stats: every ``data.*``
    key, the seed (splits, mining samples), the base model by name and fingerprint (token lengths, windows, the
    miner by default), its max_seq_length and loading kwargs, the mining model's fingerprint, and what mining and
    data.chunking's ``similarity`` choice encode with (``evaluate.precision``, ``evaluate.backend`` when an export
    encodes, ``train.prompts`` when given)."""
    from core.model import model_fingerprint, resolve_model

    settings = flatten({"data": config.data.model_dump(mode="json")})
    settings["seed"] = config.seed
    model = config.model
    settings.update({"model.name": model.name, "model.revision": model.revision,
                     "model.fingerprint": resolve_model(model).fingerprint,
                     "model.max_seq_length": model.max_seq_length, "model.kwargs": dict(model.kwargs)})
    mining, chunking = config.data.hard_negatives, config.data.chunking
    similarity = chunking is not None and chunking.positive == "similarity"
    if mining is not None or similarity:  # they encode
        settings["evaluate.precision"] = config.evaluate.precision
    # the base model encodes for them, with train.prompts and through its export when evaluate.backend asks (a miner
    # of its own stays in PyTorch with its own prompts: data.negatives.mine_train)
    base_encodes = similarity or (mining is not None and mining.model is None)
    if base_encodes and config.evaluate.backend != "torch":
        settings["evaluate.backend"] = config.evaluate.backend
    if base_encodes and config.train.prompts:
        settings["train.prompts"] = dict(config.train.prompts)
    if mining is not None and mining.model is not None:
        settings["data.hard_negatives.model.fingerprint"] = model_fingerprint(Path(mining.model).expanduser())
    return settings


def flatten(node: object, prefix: str = "") -> dict[str, object]:
    """Nested dicts as ``dotted.key -> leaf`` (a list or an empty dict is a leaf)."""
    if not isinstance(node, dict) or not node:
        return {prefix: node}
    flat: dict[str, object] = {}
    for key, value in node.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else key))
    return flat


def source_fingerprints(config: RunConfig) -> dict[str, str | None]:
    """role -> content hash of each source the config reads (None: a Hub dataset without a pinned revision, whose
    content cannot be known without reading it again)."""
    sources = {role: getattr(config.data, role) for role in ROLES if getattr(config.data, role) is not None}
    return {f"data.{role}": source_fingerprint(source) for role, source in sources.items()}


def source_fingerprint(source: SourceConfig) -> str | None:
    """sha256 of a source file, of (relative path, sha256) of every file of a folder (BEIR), or the Hub id with its
    pinned revision."""
    path = Path(source.path).expanduser()
    if path.is_file():
        return sha256_file(path)
    if path.is_dir():
        digest = hashlib.sha256()
        for item in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(f"{item.relative_to(path).as_posix()}\0{sha256_file(item)}\n".encode())
        return digest.hexdigest()
    return f"hub:{source.path}:{source.subset}@{source.revision}" if source.revision else None


def provenance(config: RunConfig) -> dict:
    """What meta.json records about where data/ came from (``stale_reason`` compares a config against it)."""
    return {"settings": data_settings(config), "sources": source_fingerprints(config)}


def stale_reason(config: RunConfig, folder: Path) -> str | None:
    """Why ``folder`` (a run's data/) is not what ``config`` would prepare, or None when it is: its recorded
    settings and source hashes equal the config's, so reading it gives the rows preparing again would."""
    meta = folder / "meta.json"
    if not meta.is_file() or not (folder / "stats.json").is_file():
        return f"no prepared data in {folder}"
    recorded = json.loads(meta.read_text(encoding="utf-8"))
    if "settings" not in recorded or "sources" not in recorded:
        return f"{meta} does not record what it was prepared from (written by an older embtune)"
    before, now = recorded["settings"], data_settings(config)
    changed = [k for k in sorted(set(before) | set(now)) if before.get(k) != now.get(k)]
    if changed:
        key = changed[0]
        more = f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
        return f"{key} changed ({_show(before.get(key))} -> {_show(now.get(key))}){more}"
    return _source_change(recorded["sources"], source_fingerprints(config))


def _source_change(before: dict, now: dict) -> str | None:
    for role in sorted(set(before) | set(now)):
        if now.get(role) is None and role in now:
            return f"{role} is a Hub dataset without a pinned revision (set {role}.revision to reuse data/)"
        if before.get(role) != now.get(role):
            return f"the source of {role} changed since data/ was prepared (its content hash differs)"
    return None


def _show(value: object) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 40 else text[:16] + "..."
