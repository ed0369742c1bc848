"""Checks around loading a model: ``model.kwargs`` against the known keys, custom code only with
``model.trust_remote_code``, the files a Hub download may skip, and weight files that cannot be read or do not
belong to the architecture.

A misfit is one clear message naming the key or file, instead of a library traceback.
"""

from __future__ import annotations

import fnmatch
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from configs.errors import UserError, did_you_mean
from configs.schema import ModelConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KwargSpec:
    """One key of ``model.kwargs``: the values it takes and the ``from_pretrained`` argument it becomes."""

    values: tuple[str, ...]
    argument: str
    example: str


DTYPES = ("auto", "float32", "bfloat16", "float16")
ATTENTION = ("eager", "sdpa", "flex_attention", "flash_attention_2", "flash_attention_3")
MODEL_KWARGS: dict[str, KwargSpec] = {
    "dtype": KwargSpec(DTYPES, "dtype", "bfloat16"),
    # transformers 5 renamed torch_dtype to dtype; the old name is what most model cards still show.
    "torch_dtype": KwargSpec(DTYPES, "dtype", "bfloat16"),
    "attn_implementation": KwargSpec(ATTENTION, "attn_implementation", "sdpa"),
}


def loading_kwargs(config: ModelConfig) -> dict[str, str]:
    """``model.kwargs`` as ``model_kwargs=`` for SentenceTransformer: known keys and values only, aliases resolved.

    Raises:
        UserError: an unknown key or value (with the closest valid one), or dtype given twice.
    """
    kwargs: dict[str, str] = {}
    for key, value in config.kwargs.items():
        if key not in MODEL_KWARGS:
            raise UserError(f"model.kwargs.{key} is not a known loading option.{did_you_mean(key, MODEL_KWARGS)} "
                            f"Known: {', '.join(MODEL_KWARGS)}.")
        spec = MODEL_KWARGS[key]
        if str(value) not in spec.values:
            raise UserError(f"model.kwargs.{key}={value!r} is not one of {', '.join(spec.values)}."
                            f"{did_you_mean(str(value), spec.values)} E.g. model.kwargs.{key}={spec.example}.")
        if spec.argument in kwargs:
            raise UserError(f"model.kwargs sets {spec.argument} twice (dtype and torch_dtype mean the same); "
                            "keep one of them.")
        kwargs[spec.argument] = str(value)
    return kwargs


def remote_code(folder: Path) -> list[str]:
    """What in a model folder is its own Python code: ``auto_map`` entries of its configs (the backbone's
    config.json, at the top or in a module folder) and modules.json entries outside sentence-transformers."""
    found = []
    for config in [folder / "config.json", *sorted(folder.glob("*/config.json"))]:
        if config.is_file():
            auto_map = _json(config).get("auto_map") or {}
            found += [f"{config.relative_to(folder)} auto_map {k} -> {v}" for k, v in sorted(auto_map.items())]
    if (folder / "modules.json").is_file():
        for module in _json(folder / "modules.json"):
            if not str(module.get("type", "")).startswith("sentence_transformers."):
                found.append(f"modules.json module {module.get('type')}")
    return found


def _json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise UserError(f"{path} is not valid JSON ({err}). Copy the model folder again from its source.") from None


_WARNED: set[str] = set()


def check_remote_code(folder: Path, config: ModelConfig, what: str | None = None) -> None:
    """Refuse a model that runs its own code unless ``model.trust_remote_code``; when allowed, warn once.

    ``what``: the config key of a folder other than the base model (the miner, GIST's guide), which never runs
    custom code: the flag is the base model's."""
    code = remote_code(folder)
    if code and what is not None:
        raise UserError(f"{what}: {folder} runs its own Python code ({'; '.join(code[:3])}), which is only ever run "
                        "for the base model (model.name with model.trust_remote_code=true). Use a model folder "
                        "without custom code here.")
    if code and not config.trust_remote_code:
        raise UserError(f"model.name '{config.name}' runs its own Python code ({'; '.join(code[:3])}). Loading it "
                        "executes that code: read it, and if you trust its authors set model.trust_remote_code=true "
                        "(recorded in run.json and the model card).")
    if config.trust_remote_code and config.name not in _WARNED:
        _WARNED.add(config.name)  # once per process: data, train and evaluate each load the model
        log.warning("model.trust_remote_code=true: loading %s runs the Python code shipped with it%s.", config.name,
                    f" ({'; '.join(code[:3])})" if code else " (it has none)")


# What sentence-transformers never reads when it loads with PyTorch: other frameworks' copies of the weights and
# exports for other runtimes (ONNX / OpenVINO exports are made from the fine-tuned model, not downloaded).
OTHER_BACKENDS = ("onnx/*", "openvino/*", "*.onnx", "*.onnx_data", "*.h5", "*.msgpack", "*.ot", "*.tflite",
                  "*.mlmodel", "coreml/*", "*.gguf", "tf_model*", "flax_model*", "rust_model*")


def repo_files(repo_id: str, revision: str | None) -> list[str] | None:
    """The Hub repository's files at ``revision``, or None offline (the cached snapshot is then used as it is)."""
    from huggingface_hub import HfApi
    from huggingface_hub.constants import is_offline_mode

    if is_offline_mode():
        return None
    try:
        return HfApi().list_repo_files(repo_id, revision=revision)
    except Exception:  # noqa: BLE001 - snapshot_download then reports what is wrong (missing, gated, network)
        return None


def hub_ignore_patterns(repo_files: list[str] | None) -> list[str]:
    """``ignore_patterns`` for ``snapshot_download``: other backends' files always and, in every folder that has
    safetensors weights, the duplicate ``pytorch_model*.bin`` (transformers loads the safetensors).

    Args:
        repo_files: the repository's file list at the revision, or None when it could not be listed (offline).
    """
    patterns = list(OTHER_BACKENDS)
    for file in repo_files or ():
        folder = file.rpartition("/")[0]
        if fnmatch.fnmatch(file.rpartition("/")[2], "*.safetensors"):
            pattern = f"{folder}/pytorch_model*.bin" if folder else "pytorch_model*.bin"
            patterns += [pattern] if pattern not in patterns else []
    return patterns


def unreadable_safetensors(folder: Path, files: list[str]) -> Path | None:
    """The first ``.safetensors`` file among ``files`` (relative to ``folder``) whose header cannot be read."""
    from safetensors import safe_open

    for rel in files:
        if rel.endswith(".safetensors"):
            try:
                with safe_open(str(folder / rel), framework="pt") as handle:
                    handle.keys()
            except Exception:  # noqa: BLE001 - any failure to open is the answer we look for
                return folder / rel
    return None


def check_weights_cover(model, folder: Path, weight_files: list[Path]) -> None:
    """A weights file that loads but lacks most of the model's tensors leaves them randomly initialised (transformers
    only warns): refuse it. Names may carry a prefix (``bert.``), so a tensor counts when a stored name ends with it.

    Args:
        weight_files: the folder's full-model weight files (``core.model.weight_files``, adapters left out).
    """
    from safetensors import safe_open

    files = [f for f in weight_files if f.suffix == ".safetensors"]
    auto_model = getattr(model[0], "auto_model", None)
    if not files or auto_model is None:
        return
    suffixes = set()
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            for key in handle.keys():
                parts = key.split(".")
                suffixes.update(".".join(parts[i:]) for i in range(len(parts)))
    needed = list(auto_model.state_dict())
    found = sum(key in suffixes for key in needed)
    if found < len(needed) / 2:
        raise UserError(f"{files[0]} holds {found} of the {len(needed)} tensors the model in {folder} needs; the "
                        "rest would be randomly initialised. It is not this model's weights file: copy the right one.")


# What may sit beside the modules of a model folder: exports for other runtimes (``push.export``).
EXPORT_FOLDERS = ("onnx", "openvino")
# Files of a run folder or a trainer checkpoint: inside a model folder they mean a run or a checkpoint was copied in.
RUN_FILES = ("run.json", "config.resolved.yaml", "versions.json", "trainer_state.json", "optimizer.pt",
             "scheduler.pt", "rng_state.pth", "scaler.pt")


def module_folders(path: Path) -> set[str]:
    """The top-level folders modules.json names as module paths ('1_Pooling', ...); empty without modules.json."""
    modules = path / "modules.json"
    if not modules.is_file():
        return set()
    try:
        entries = json.loads(modules.read_text(encoding="utf-8"))
        return {Path(str(m.get("path") or "")).parts[0] for m in entries if m.get("path")}
    except (ValueError, AttributeError, TypeError):
        raise UserError(f"{modules} is not valid JSON (a list of modules). Copy the model folder again.") from None


def check_only_model_parts(path: Path) -> None:
    """Refuse a model folder holding a folder that is no module of it, or a run's or checkpoint's file."""
    modules = module_folders(path)
    allowed = modules | set(EXPORT_FOLDERS)
    strays = sorted(item.name + ("/" if item.is_dir() else "") for item in path.iterdir()
                    if not item.name.startswith(".")
                    and (item.name in RUN_FILES or item.is_dir() and item.name not in allowed))
    if strays:
        named = ", ".join(sorted(modules)) or "no module folder"
        raise UserError(f"{path} holds {', '.join(strays)}, which {'is' if len(strays) == 1 else 'are'} not part of "
                        f"the model (its modules.json names {named}): a nested run folder or a stray checkpoint? "
                        "Move it out of the model folder: the model's identity covers every file in it, so nothing "
                        "there is skipped unseen.")


def position_limit(model) -> int | None:
    """The longest input, in tokens, that the model's learned position table takes: its rows, less the RoBERTa
    family's offset (positions start after the padding index, so XLM-R's and MPNet's 514 rows read 512 tokens; found
    as sentence-transformers finds it). None without such a table: rotary or relative positions (ModernBERT, T5), a
    first module that is not a transformer (static embeddings)."""
    import torch

    auto = getattr(model[0], "auto_model", None)
    for module in auto.modules() if auto is not None else ():
        table = getattr(module, "position_embeddings", None)
        if isinstance(table, torch.nn.Embedding):
            padding = getattr(module, "padding_idx", None)
            return table.num_embeddings - (padding + 1 if isinstance(padding, int) else 0)
    return None


def check_reading_length(model, max_seq_length: int | None, folder: Path | str) -> None:
    """The length the model will read (``max_seq_length`` from the config, else the model's own setting) beyond what
    its position embeddings take fails here, naming the key and the limit, instead of as a tensor-size error deep in
    the forward pass at the first long text."""
    length = max_seq_length or getattr(model, "max_seq_length", None)
    limit = position_limit(model)
    if limit is None or not length or length <= limit:
        return
    if max_seq_length:
        what = f"model.max_seq_length {length} is longer than the model in {folder} can read"
        fix = f"Set model.max_seq_length to {limit} or less (or leave it empty for the model's own setting)"
    else:
        what = f"The model in {folder} is set to read {length} tokens (its own max_seq_length), more than it can"
        fix = f"Set model.max_seq_length to {limit} or less"
    raise UserError(f"{what}: its position embeddings take at most {limit} tokens. {fix}; for longer documents use "
                    "evaluate.chunking, which scores each window of the model's length.")
