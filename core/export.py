"""ONNX and OpenVINO exports of a published model (``push.export``), and evaluation on an export (``evaluate.backend``).

The library's own exporters (``export_optimized_onnx_model``, ``export_dynamic_quantized_onnx_model``,
``export_static_quantized_openvino_model``) need ``optimum``, which cannot be installed beside transformers 5
(optimum-onnx 0.1.0 requires transformers<4.58; optimum-intel 2.2.0 resolves only with transformers 5.5.x). So the
transformer is exported with torch's TorchScript exporter and quantized with ONNX Runtime / NNCF directly, into the
files ``SentenceTransformer(path, backend="onnx" | "openvino")`` reads:

| name          | file                                            | how                                             |
|---------------|-------------------------------------------------|-------------------------------------------------|
| onnx          | onnx/model.onnx                                 | torch.onnx.export (TorchScript), fp32           |
| onnx_int8     | onnx/model_qint8_quantized.onnx                 | onnxruntime quantize_dynamic, int8 MatMul weights|
| openvino      | openvino/openvino_model.xml (+ .bin)            | openvino.convert_model of onnx/model.onnx, fp32 |
| openvino_int8 | openvino/openvino_model_qint8_quantized.xml     | NNCF int8 weight compression (data-free)        |

Each export is then checked against the PyTorch model by ``train.push.export_parity``.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from configs.errors import UserError
from configs.runs import atomic_dir
from core.model import load_model_folder, model_fingerprint
from core.onnx_encoder import ExportEncoder, read_pipeline, require

log = logging.getLogger(__name__)

OPSET = 17


@dataclass(frozen=True)
class ExportSpec:
    """One export: where it lives, what runs it, what it is built from, and how."""

    backend: str  # runtime: 'onnx' (ONNX Runtime) or 'openvino'
    file: str  # inside the model folder, where SentenceTransformer(path, backend=...) looks
    quantized: bool
    source: str | None  # the export it is built from (built too, and removed afterwards, when not asked for)
    packages: tuple[str, ...]  # needed to build and run it
    build: Callable[..., None]  # build(folder=, source=, target=, key=) writes ``target``


def without(key: str) -> str:
    """What to do instead when the setting ``key`` asks for an export this model cannot have."""
    if key == "evaluate.backend":
        return "Set evaluate.backend: torch to encode it in PyTorch."
    return f"Publish it without {key} (PyTorch only)."


def build_onnx(folder: Path, source: Path | None, target: Path, key: str = "push.export") -> None:
    """Trace the transformer of ``folder`` on a padded batch (so the attention mask stays in the graph). ``key``:
    the setting that asked for the export, named in the error."""
    import torch

    try:  # a model that needs remote code or that the TorchScript exporter cannot trace fails here
        # Traced on the CPU: the graph does not depend on the device, and the example batch is built there.
        model = load_model_folder(folder, "the model to export", device="cpu")
        batch = model.tokenizer(["an export traces this longer sentence", "short"], padding=True,
                                return_tensors="pt")
        names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in batch]
        axes = {n: {0: "batch_size", 1: "sequence_length"} for n in [*names, "last_hidden_state"]}
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
            torch.onnx.export(hidden_states(model[0].auto_model.eval(), names), tuple(batch[n] for n in names),
                              str(target), input_names=names, output_names=["last_hidden_state"],
                              dynamic_axes=axes, opset_version=OPSET, dynamo=False)
    except Exception as err:  # noqa: BLE001 - any failure means this model cannot be exported this way
        raise UserError(f"The ONNX exporter cannot export the model in {folder}: {type(err).__name__}: "
                        f"{' '.join(str(err).split())[:300]}. {without(key)}") from None


def hidden_states(transformer, names: list[str]):
    """``transformer`` as ``forward(input_ids, attention_mask[, token_type_ids]) -> last_hidden_state``: the inputs
    and the one output that ONNX Runtime callers and optimum's ORTModelForFeatureExtraction expect."""
    import torch

    class HiddenStates(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.transformer = transformer

        def forward(self, *inputs):
            return self.transformer(**dict(zip(names, inputs)), return_dict=True).last_hidden_state  # (b, t, hidden)

    return HiddenStates()


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """onnxruntime.quantization logs advice to the root logger ('consider pre-processing') that is not the user's."""
    root, level = logging.getLogger(), logging.getLogger().level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def build_onnx_int8(folder: Path, source: Path | None, target: Path, key: str = "push.export") -> None:
    """Dynamic int8: MatMul weights per channel; embeddings stay fp32 (quantizing them costs accuracy)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet_root_logger():
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"])


def build_openvino(folder: Path, source: Path | None, target: Path, key: str = "push.export") -> None:
    ov = require("openvino", f"{key} openvino")
    target.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(ov.convert_model(str(source)), str(target), compress_to_fp16=False)  # fp32, as exported


def build_openvino_int8(folder: Path, source: Path | None, target: Path, key: str = "push.export") -> None:
    """int8 weights, per output channel (NNCF weight compression: data-free); the CPU plugin computes with them.

    Not static int8 (``nncf.quantize``, as the library's ``export_static_quantized_openvino_model``): measured on
    STSb test texts with all-MiniLM-L6-v2, its embeddings drift on padded batches (min per-text cosine 0.60, mean
    0.978; 0.989 / 0.997 unpadded), where weight-only int8 keeps 0.997 / 0.9994 at 1.8x the fp32 export's speed."""
    ov, nncf = require("openvino", f"{key} openvino_int8"), require("nncf", f"{key} openvino_int8")
    nncf.set_log_level(logging.WARNING)  # its per-layer table is not the user's business
    model = nncf.compress_weights(ov.Core().read_model(str(source)), mode=nncf.CompressWeightsMode.INT8_ASYM)
    ov.save_model(model, str(target), compress_to_fp16=False)


EXPORTS: dict[str, ExportSpec] = {
    "onnx": ExportSpec("onnx", "onnx/model.onnx", False, None, ("onnx", "onnxruntime"), build_onnx),
    "onnx_int8": ExportSpec("onnx", "onnx/model_qint8_quantized.onnx", True, "onnx", ("onnx", "onnxruntime"),
                            build_onnx_int8),
    "openvino": ExportSpec("openvino", "openvino/openvino_model.xml", False, "onnx", ("onnx", "openvino"),
                           build_openvino),
    "openvino_int8": ExportSpec("openvino", "openvino/openvino_model_qint8_quantized.xml", True, "openvino",
                                ("onnx", "openvino", "nncf"), build_openvino_int8),
}


def with_sources(names: tuple[str, ...] | list[str]) -> list[str]:
    """``names`` and every export they are built from, sources first."""
    ordered: list[str] = []
    for name in names:
        chain = [name]
        while EXPORTS[chain[-1]].source:
            chain.append(EXPORTS[chain[-1]].source)
        ordered += [n for n in reversed(chain) if n not in ordered]
    return ordered


def check_exportable(folder: Path, names: tuple[str, ...] | list[str], merged: bool = False,
                     key: str = "push.export") -> None:
    """Fail before any work when a package is missing or the model is one the exporter cannot handle. ``merged``:
    a LoRA ``folder`` is published merged (push.merge_adapter), so its base pipeline is what gets exported. ``key``:
    the setting that asked for the export, named in the error."""
    for name in with_sources(names):
        for package in EXPORTS[name].packages:
            require(package, f"{key} {name}")
    if (folder / "adapter_config.json").is_file() and not (folder / "model.safetensors").is_file():
        if merged:
            return
        fix = ("Set push.merge_adapter=true." if key == "push.export" else
               f"Set {key}: torch to encode the adapter in PyTorch.")
        raise UserError(f"{folder} holds a LoRA adapter, not full weights: an export needs the merged model. {fix}")
    read_pipeline(folder, without(key))


def export_files(folder: Path, name: str) -> list[Path]:
    """The files of one export in ``folder`` (OpenVINO: .xml and .bin; ONNX: the model and any external data)."""
    main = folder / EXPORTS[name].file
    return [p for p in sorted(main.parent.glob(main.stem + ".*")) if p.suffix in (".onnx", ".xml", ".bin", ".data")]


def build_exports(folder: Path, names: tuple[str, ...] | list[str], out: Path, key: str = "push.export") -> None:
    """Write ``names`` (and their sources) for the model in ``folder`` under ``out`` (often ``folder`` itself)."""
    check_exportable(folder, names, key=key)
    for name in with_sources(names):
        spec = EXPORTS[name]
        source = out / EXPORTS[spec.source].file if spec.source else None
        log.info("exporting %s -> %s", name, spec.file)
        (out / spec.file).parent.mkdir(parents=True, exist_ok=True)
        spec.build(folder=folder, source=source, target=out / spec.file, key=key)


def remove_exports(out: Path, names: list[str]) -> None:
    """Delete the files of ``names`` (and their folder when nothing else is left in it)."""
    for name in names:
        for path in export_files(out, name):
            path.unlink()
        folder = (out / EXPORTS[name].file).parent
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def load_backend(folder: Path, backend: str, export_dir: Path, max_seq_length: int | None = None) -> ExportEncoder:
    """The model in ``folder`` run by ``backend`` ('onnx' or 'openvino', fp32): its own export when the folder has
    one (a published folder), else one exported once into ``export_dir/FINGERPRINT/`` and reused."""
    spec = EXPORTS[backend]
    if (folder / spec.file).is_file():  # a folder that ships its export: still one the encoder can run
        read_pipeline(folder, without("evaluate.backend"))
        return ExportEncoder(folder, folder / spec.file, backend, max_seq_length=max_seq_length)
    from filelock import FileLock

    cached = Path(export_dir) / model_fingerprint(folder)[:16]
    cached.parent.mkdir(parents=True, exist_ok=True)
    # one process exports, the others (DDP ranks preparing data/ at once) wait and read it: without the lock a
    # later one would swap the folder under an earlier one that is loading it
    with FileLock(cached.parent / f".{cached.name}.lock"):
        if not (cached / spec.file).is_file():
            with atomic_dir(cached) as tmp:  # complete or absent: an interrupted export is never reused
                build_exports(folder, [backend], tmp, key="evaluate.backend")
    return ExportEncoder(folder, cached / spec.file, backend, max_seq_length=max_seq_length)


def encoder_for(model, folder: Path | None, evaluate, run_dir: Path) -> tuple[object, str, str]:
    """(encoder, precision, backend): what an encode-only phase (evaluation, hard-negative mining, data.chunking's
    ``similarity`` window choice) encodes with for ``model``, loaded from ``folder``.

    ``evaluate.backend`` 'torch', or no ``folder`` (a model whose vectors no other phase reads, e.g. a miner of its
    own): the model itself, at ``evaluate.precision`` resolved for its device (bf16 only where
    native). 'onnx' | 'openvino': the folder's export (its own, or one made once into ``RUN_DIR/eval/exports/``) at
    the model's max_seq_length, run in fp32. Every phase takes the same choice, so the vectors mining stores under
    the base model's encoder fingerprint are the ones evaluation's baseline reads, and no text is encoded twice.
    """
    from core.embed import resolve_precision

    if evaluate.backend == "torch" or folder is None:
        return model, resolve_precision(evaluate.precision, model), "torch"
    export = load_backend(Path(folder), evaluate.backend, Path(run_dir) / "eval" / "exports", model.max_seq_length)
    return export, "fp32", evaluate.backend
