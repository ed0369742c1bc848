"""LoRA adapters (peft): train a few low-rank matrices beside a frozen base instead of every weight.

A LoRA run's ``final/`` is a sentence-transformers folder whose backbone is an adapter (``adapter_config.json`` +
``adapter_model.safetensors``, a few hundred KB) naming its base; ``core.model.load_model`` loads the base from
the run's config and merges the adapter in. ``train.push.merged_adapter`` writes the merged
model as a plain folder.

We wrap the backbone with peft's own ``get_peft_model`` rather than the library's ``model.add_adapter``: the latter
goes through transformers' PEFT integration, which refuses peft < 0.22 (``check_peft_version``), and peft 0.21.2 is
the newest release on PyPI as of this writing; saving and loading adapter folders work with both.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from configs.errors import UserError
from configs.schema import AdapterConfig, ModelConfig

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")


def is_adapter_folder(folder: Path) -> bool:
    return (Path(folder) / ADAPTER_CONFIG).is_file()


def _backbone(model) -> nn.Module:
    """The transformers model inside the first module (where sentence-transformers keeps it, ``model[0].model``)."""
    backbone = getattr(model[0], "model", None)
    if not isinstance(backbone, nn.Module):
        raise UserError(f"model.adapter: the model's first module is {type(model[0]).__name__}, not a transformer; "
                        "LoRA adapts a Transformer backbone. Remove model.adapter to fine-tune every weight.")
    return backbone


def lora_layer_names(backbone: nn.Module) -> list[str]:
    """Distinct last names of the layers LoRA can adapt (Linear and GPT-2's Conv1D), e.g. dense, key, query."""
    from transformers.pytorch_utils import Conv1D

    return sorted({name.rpartition(".")[2] for name, module in backbone.named_modules()
                   if name and isinstance(module, nn.Linear | Conv1D)})


def resolve_targets(backbone: nn.Module, adapter: AdapterConfig) -> list[str]:
    """``target_modules``, or peft's default for the architecture; each must name at least one adaptable layer
    (peft matches a module whose name is the target or ends with '.' + target)."""
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as DEFAULTS

    fit = f"Layers that fit: {', '.join(lora_layer_names(backbone))} (set model.adapter.target_modules to some of them)"
    model_type = getattr(getattr(backbone, "config", None), "model_type", "?")
    targets = list(adapter.target_modules or DEFAULTS.get(model_type, []))
    if not targets:
        raise UserError(f"model.adapter.target_modules is empty and peft has no default for model type "
                        f"'{model_type}'. {fit}.")
    names = [name for name, module in backbone.named_modules() if _adaptable(module)]
    for target in targets:
        if not any(name == target or name.endswith(f".{target}") for name in names):
            raise UserError(f"model.adapter.target_modules: '{target}' matches no layer LoRA can adapt in this "
                            f"{model_type} model. {fit}.")
    return targets


def check_adapter_fits(folder: Path, config: ModelConfig) -> None:
    """``model.adapter``'s targets against the architecture in ``folder``, built on the meta device (no weights
    read, no memory): a misfit fails before any data work. ``add_lora`` checks the loaded model again."""
    import json

    import torch
    from transformers import AutoConfig, AutoModel

    if config.adapter is None:
        return
    modules = Path(folder) / "modules.json"  # the backbone's config sits in the first module's folder
    sub = json.loads(modules.read_text())[0].get("path", "") if modules.is_file() else ""
    hf_config = AutoConfig.from_pretrained(str(Path(folder) / sub), trust_remote_code=config.trust_remote_code)
    with torch.device("meta"):
        backbone = AutoModel.from_config(hf_config, trust_remote_code=config.trust_remote_code)
    resolve_targets(backbone, config.adapter)


def _adaptable(module: nn.Module) -> bool:
    from transformers.pytorch_utils import Conv1D

    return isinstance(module, nn.Linear | nn.Embedding | nn.Conv1d | nn.Conv2d | Conv1D)


def add_lora(model, adapter: AdapterConfig, *, seed: int) -> list[str]:
    """Wrap the backbone of ``model`` in a trainable LoRA adapter; everything else is frozen. Checkpoints name the
    local base folder; ``name_adapter_base`` gives final/ its published name.

    Args:
        seed: seeds the random lora_A initialisation (the trainer seeds only later), so a run is reproducible.
    Returns:
        The target module names used.
    """
    import torch
    from peft import LoraConfig, get_peft_model

    backbone = _backbone(model)
    targets = resolve_targets(backbone, adapter)
    lora = LoraConfig(r=adapter.r, lora_alpha=adapter.alpha, lora_dropout=adapter.dropout, target_modules=targets)
    model.requires_grad_(False)  # pooling, dense and normalise modules stay as the base has them
    with torch.random.fork_rng(devices=[]):  # the caller's random state is left as it was
        torch.manual_seed(seed)
        model[0].model = get_peft_model(backbone, lora)  # freezes the backbone, adds trainable lora_A / lora_B
    return targets


def name_adapter_base(folder: Path, base_name: str, revision: str | None) -> None:
    """Make a saved adapter name its base as others can load it (a Hub id at a commit, or a folder). Written after
    saving: peft, when saving an adapter whose base is a Hub id, asks the Hub for the base's config every time."""
    import json

    path = Path(folder) / ADAPTER_CONFIG
    settings = json.loads(path.read_text(encoding="utf-8"))
    settings.update(base_model_name_or_path=base_name, revision=revision)
    path.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def attach_adapter(model, folder: Path) -> None:
    """Load the adapter saved in ``folder`` onto ``model``'s backbone and merge it into the weights (the result is
    a plain model: evaluation, exports and merged publishing need no peft)."""
    from peft import PeftModel

    backbone = _backbone(model)
    try:
        adapted = PeftModel.from_pretrained(backbone, str(folder))
    except (OSError, ValueError, RuntimeError, KeyError) as err:
        raise UserError(f"{folder}: the LoRA adapter does not load onto its base model ({type(err).__name__}: "
                        f"{str(err)[:300]}). Check that model.name is the base the adapter was trained on.") from None
    model[0].model = adapted.merge_and_unload()


def adapter_base(folder: Path, config: ModelConfig) -> ModelConfig:
    """The model section for the base an adapter folder names (``base_model_name_or_path`` and ``revision``)."""
    import json

    settings = json.loads((Path(folder) / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    base = settings.get("base_model_name_or_path")
    if not base:
        raise UserError(f"{folder / ADAPTER_CONFIG} names no base model (base_model_name_or_path is empty); give "
                        "the base as model.name and the adapter folder can be evaluated as a run's final/.")
    if config.adapter is not None:
        raise UserError(f"model.name '{config.name}' is a LoRA adapter; model.adapter would stack a second adapter "
                        "on it, which other tools cannot load. Train the adapter with model.name set to its base "
                        f"({base}), or remove model.adapter to fine-tune the merged model fully.")
    return config.model_copy(update={"name": base, "revision": settings.get("revision")})


def parameter_counts(model) -> dict[str, int]:
    """Trainable and total parameters (shared tensors once)."""
    unique = {id(p): p for p in model.parameters()}.values()
    return {"trainable": sum(p.numel() for p in unique if p.requires_grad), "total": sum(p.numel() for p in unique)}


def load_adapter_weights(model, checkpoint: Path) -> None:
    """Put a checkpoint's adapter weights into the wrapped backbone (resume, or pick the best checkpoint)."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    weights = load_file(str(Path(checkpoint) / ADAPTER_WEIGHTS[0]))
    result = set_peft_model_state_dict(model[0].model, weights)
    missing = [k for k in result.missing_keys if "lora_" in k]
    if missing or result.unexpected_keys:
        raise UserError(f"{checkpoint}: its adapter does not fit this run's adapter (missing {missing[:3]}, "
                        f"unexpected {list(result.unexpected_keys)[:3]}). Start fresh in another run_dir=...")
