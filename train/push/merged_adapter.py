"""The base with a LoRA run's adapter merged in, as a plain sentence-transformers folder (push.merge_adapter)."""

from __future__ import annotations

from pathlib import Path

from configs.errors import UserError
from configs.load import RESOLVED_NAME, load_config
from configs.runs import atomic_dir
from configs.schema import ModelConfig
from core.adapters import ADAPTER_CONFIG, is_adapter_folder
from core.model import load_model


def merged_model_folder(final: Path, out: Path, model_config: ModelConfig | None = None) -> Path:
    """Write the base with ``final``'s adapter merged in to ``out`` (atomically): a plain sentence-transformers
    folder that loads without peft. ``model_config`` defaults to the model section of the run's resolved config
    (``final/../config.resolved.yaml``). Returns ``out``."""

    final, out = Path(final), Path(out)
    if not is_adapter_folder(final):
        raise UserError(f"{final} holds no LoRA adapter ({ADAPTER_CONFIG}); it is already a full model.")
    if model_config is None:
        model_config = load_config(final.parent / RESOLVED_NAME).model
    model, _ = load_model(model_config, path=final)
    with atomic_dir(out) as tmp:
        model.save_pretrained(str(tmp))
    return out
