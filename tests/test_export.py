"""push.export and evaluate.backend: ONNX / OpenVINO exports in the layout the library reads, run without PyTorch by
ExportEncoder (and by the card's few lines of ONNX Runtime), checked against the PyTorch model with embtune's own
evaluator; models the exporter cannot handle are refused before anything is published."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from configs.errors import UserError
from configs.load import validate
from configs.runs import atomic_dir, load_run
from conftest import trained_incidents_run
from core.export import EXPORTS, build_exports, build_onnx, check_exportable, load_backend
from core.onnx_encoder import POOLING, ExportEncoder
from train.push.export_card import exports_markdown, onnxruntime_snippet
from train.push.export_parity import check_parity, export_all, parity_rows, parity_sets

TEXTS = ["disk full on server", "the shop website cannot open any page because the database query timeout error",
         "vpn", "printer paper jam in the office", "unknownword qwerty", ""]


def encode_torch(folder: Path, texts: list[str], **kwargs) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(folder), device="cpu").encode(texts, convert_to_numpy=True, **kwargs)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module")
def exported(tiny_model_dir, tmp_path_factory) -> Path:
    """A copy of the tiny model with onnx/model.onnx and onnx/model_qint8_quantized.onnx."""
    folder = tmp_path_factory.mktemp("exported") / "model"
    shutil.copytree(tiny_model_dir, folder)
    build_exports(folder, ["onnx", "onnx_int8"], folder)
    return folder


def variant(exported: Path, tmp_path: Path, pooling: dict | None = None, normalize: bool = False) -> Path:
    """The exported folder with another pooling config and/or a Normalize module (the ONNX file is the same: it
    holds the transformer only)."""
    folder = tmp_path / "variant"
    shutil.copytree(exported, folder)
    if pooling is not None:
        (folder / "1_Pooling" / "config.json").write_text(json.dumps({"embedding_dimension": 32, **pooling}))
    if normalize:
        modules = json.loads((folder / "modules.json").read_text())
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize",
                        "type": "sentence_transformers.base.modules.normalize.Normalize"})
        (folder / "modules.json").write_text(json.dumps(modules))
        (folder / "2_Normalize").mkdir()
    return folder


def test_layout_is_what_the_library_reads(exported):
    import onnxruntime as ort

    assert (exported / "onnx" / "model.onnx").is_file() and (exported / "onnx/model_qint8_quantized.onnx").is_file()
    session = ort.InferenceSession(str(exported / "onnx" / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input_ids", "attention_mask", "token_type_ids"]
    assert [o.name for o in session.get_outputs()] == ["last_hidden_state"]  # as ORTModelForFeatureExtraction


@pytest.mark.parametrize("mode", sorted(POOLING))
@pytest.mark.parametrize("include_prompt", [True, False])
def test_onnx_encoder_matches_pytorch_for_every_pooling(exported, tmp_path, mode, include_prompt):
    folder = variant(exported, tmp_path, {"pooling_mode": mode, "include_prompt": include_prompt}, normalize=True)
    encoder = ExportEncoder(folder, folder / "onnx" / "model.onnx", "onnx")
    got = encoder.encode(TEXTS, prompt="query: ", batch_size=4)  # batches of mixed lengths: padding inside
    expected = encode_torch(folder, TEXTS, prompt="query: ")
    np.testing.assert_allclose(got, expected, atol=2e-5)
    assert encoder.get_embedding_dimension() == expected.shape[1]


def test_encoder_speaks_the_interface_evaluation_uses(exported):
    from core.embed import embed

    encoder = ExportEncoder(exported, exported / "onnx" / "model.onnx", "onnx", max_seq_length=8)
    assert (encoder.similarity_fn_name, encoder.max_seq_length) == ("cosine", 8)
    assert encoder.encode_query("disk full").shape == (32,)
    embeddings = embed(encoder, {"query": TEXTS[:3], "document": TEXTS[3:]}, batch_size=2)
    assert embeddings.vectors.shape == (6, 32)
    with pytest.raises(ValueError, match="pass convert_to_numpy=True"):
        encoder.encode(TEXTS, convert_to_numpy=False)


def test_encoder_records_the_same_settings_as_the_pytorch_model(exported):
    from sentence_transformers import SentenceTransformer

    from core.identity import encoder_settings

    encoder = ExportEncoder(exported, exported / "onnx" / "model.onnx", "onnx")
    torch_model = SentenceTransformer(str(exported), device="cpu")
    assert encoder_settings(encoder, {}, "fp32", "onnx") == {**encoder_settings(torch_model, {}, "fp32", "torch"),
                                                             "backend": "onnx"}


def test_int8_export_is_close_but_not_identical(exported):
    int8 = ExportEncoder(exported, exported / "onnx" / "model_qint8_quantized.onnx", "onnx").encode(TEXTS[:5])
    fp32 = encode_torch(exported, TEXTS[:5])
    assert cosines(int8, fp32).min() > 0.95
    assert np.abs(int8 - fp32).max() > 1e-4  # the weights really are int8 (fp32 agrees to ~1e-6)


@pytest.mark.parametrize("pooling", [{"pooling_mode": "mean"}, {"pooling_mode": "cls"}])
def test_card_snippet_runs_with_onnxruntime_alone(exported, tmp_path, pooling):
    folder = variant(exported, tmp_path, pooling, normalize=True)
    namespace: dict = {}
    exec(onnxruntime_snippet(folder, str(folder)), namespace)  # exactly the lines the card shows
    np.testing.assert_allclose(namespace["vectors"], encode_torch(folder, namespace["texts"]), atol=2e-5)


def test_unsupported_module_is_refused_before_any_work(tiny_model_dir, tmp_path):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Dense

    model = SentenceTransformer(str(tiny_model_dir), device="cpu")
    model.append(Dense(32, 8))
    model.save_pretrained(str(tmp_path / "dense"))
    with pytest.raises(UserError, match=r"handles models made of Transformer -> Pooling \(-> Normalize\); this one "
                                        r"is Transformer -> Pooling -> Dense\. Publish it without push.export"):
        check_exportable(tmp_path / "dense", ["onnx"])


def test_unsupported_model_under_evaluate_backend_says_to_encode_in_pytorch(tiny_model_dir, tmp_path):
    """evaluate.backend exports the model it evaluates (and the base model that mines): a model the exporter cannot
    handle is refused naming that setting and what to set, not push.export; nothing is left in the export folder."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Dense

    from core.export import load_backend

    model = SentenceTransformer(str(tiny_model_dir), device="cpu")
    model.append(Dense(32, 8))
    model.save_pretrained(str(tmp_path / "dense"))
    refusal = r"this one is Transformer -> Pooling -> Dense\. Set evaluate.backend: torch to encode it in PyTorch\.$"
    with pytest.raises(UserError, match=refusal) as raised:
        load_backend(tmp_path / "dense", "onnx", tmp_path / "exports")
    assert "push.export" not in str(raised.value)
    assert not [p for p in (tmp_path / "exports").rglob("*") if not p.name.endswith(".lock")]
    (tmp_path / "dense" / "onnx").mkdir()  # a folder that ships an export file is checked the same way
    (tmp_path / "dense" / EXPORTS["onnx"].file).write_bytes(b"not read")
    with pytest.raises(UserError, match=refusal):
        load_backend(tmp_path / "dense", "onnx", tmp_path / "exports")


def test_lora_adapter_under_evaluate_backend_says_to_encode_in_pytorch(tmp_path):
    """push.merge_adapter does nothing for python -m evaluate: an adapter folder under evaluate.backend is told the
    setting that does."""
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "adapter_config.json").write_text("{}")
    with pytest.raises(UserError, match=r"holds a LoRA adapter, not full weights: an export needs the merged model\. "
                                        r"Set evaluate.backend: torch to encode the adapter in PyTorch\.$"):
        load_backend(tmp_path / "adapter", "onnx", tmp_path / "exports")
    with pytest.raises(UserError, match=r"Set push.merge_adapter=true\.$"):
        check_exportable(tmp_path / "adapter", ["onnx"])


def test_model_the_exporter_cannot_load_is_a_clear_error(tiny_model_dir, tmp_path):
    shutil.copytree(tiny_model_dir, tmp_path / "model")
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    config.update(model_type="incident-bert", auto_map={"AutoModel": "modeling_incident.IncidentModel"})
    (tmp_path / "model" / "config.json").write_text(json.dumps(config))  # custom code, which is never run
    with pytest.raises(UserError, match=r"The ONNX exporter cannot export the model in .*model: \w+Error: .*"
                                        r"Publish it without push.export \(PyTorch only\)\."):
        build_onnx(folder=tmp_path / "model", source=None, target=tmp_path / "model.onnx")
    assert not (tmp_path / "model.onnx").exists()


def test_refused_export_publishes_nothing(tiny_model_dir, tmp_path):
    config = validate({"data": {"train": {"path": "x.csv"}}, "loss": {"name": "mnrl"}, "push": {"export": ["onnx"]}})
    shutil.copytree(tiny_model_dir, tmp_path / "model")
    (tmp_path / "model" / "modules.json").write_text(json.dumps([{"type": "custom.Thing", "path": ""}]))
    target = tmp_path / "published"
    with pytest.raises(UserError, match="this one is Thing"), atomic_dir(target) as staging:
        shutil.copytree(tmp_path / "model", staging, dirs_exist_ok=True)
        export_all(staging, config, sets=[])
    assert not target.exists() and list(tmp_path.glob(".published*")) == []


def test_missing_runtime_package_is_named(exported, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # as if not installed
    with pytest.raises(UserError, match=r"push.export openvino needs the package 'openvino', which is not "
                                        r"installed: pip install 'openvino>=2025.0'"):
        check_exportable(exported, ["openvino"])


def test_a_missing_runtime_for_evaluate_backend_names_that_setting(tiny_model_dir, tmp_path, monkeypatch):
    """Evaluation and mining export under evaluate.backend: the error names it, not push.export."""
    shutil.copytree(tiny_model_dir, tmp_path / "model")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    with pytest.raises(UserError, match=r"^evaluate.backend onnx needs the package 'onnxruntime', which is not "
                                        r"installed: pip install"):
        load_backend(tmp_path / "model", "onnx", tmp_path / "exports")
    assert not list((tmp_path / "exports").rglob("*.onnx"))  # nothing half-written


def test_unknown_export_name_is_refused_by_the_schema():
    with pytest.raises(UserError, match=r"push.export.0: Input should be 'onnx', 'onnx_int8', 'openvino' or "
                                        r"'openvino_int8' \(got 'onnx_fp16'\)"):
        validate({"data": {"train": {"path": "x.csv"}}, "loss": {"name": "mnrl"}, "push": {"export": ["onnx_fp16"]}})


def test_load_backend_exports_once_into_its_folder(tiny_model_dir, tmp_path, exported):
    shutil.copytree(tiny_model_dir, tmp_path / "model")
    encoder = load_backend(tmp_path / "model", "onnx", tmp_path / "exports")
    assert not (tmp_path / "model" / "onnx").exists()  # the model folder is left as it was
    stamp = encoder.export_file.stat().st_mtime_ns
    again = load_backend(tmp_path / "model", "onnx", tmp_path / "exports")
    assert again.export_file == encoder.export_file and again.export_file.stat().st_mtime_ns == stamp
    assert load_backend(exported, "onnx", tmp_path / "unused").export_file == exported / "onnx" / "model.onnx"


def test_two_processes_asking_at_once_export_once(tiny_model_dir, tmp_path, monkeypatch):
    """DDP ranks preparing data/ at once both ask for the base model's export: one builds it, the other waits and
    reads it. Without the lock both build: across processes the later swaps the folder under the earlier; here, two
    threads of one process, torch's exporter refuses the second export outright."""
    import threading

    import core.export

    shutil.copytree(tiny_model_dir, tmp_path / "model")
    builds, real = [], core.export.build_exports

    def slow_build(folder, names, out, **kwargs):
        builds.append(out)
        time.sleep(0.5)  # both callers are inside load_backend by now
        real(folder, names, out, **kwargs)

    monkeypatch.setattr(core.export, "build_exports", slow_build)
    encoders, errors = [], []

    def ask():
        try:
            encoders.append(load_backend(tmp_path / "model", "onnx", tmp_path / "exports"))
        except Exception as err:  # noqa: BLE001 - reported by the assertion below
            errors.append(err)

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(builds) == 1 and len(encoders) == 2
    assert encoders[0].export_file == encoders[1].export_file and encoders[0].export_file.is_file()


@pytest.fixture(scope="module")
def tiny_run(tiny_model_dir, tmp_path_factory):
    run_dir = trained_incidents_run(tmp_path_factory.mktemp("export_run"), tiny_model_dir)
    config = load_run(str(run_dir))
    return run_dir, config.model_copy(update={"push": config.push.model_copy(update={"export": ("onnx", "onnx_int8")})})


def test_export_all_checks_parity_with_embtunes_evaluator(tiny_run, tmp_path):
    run_dir, config = tiny_run
    staging = tmp_path / "staging"
    shutil.copytree(run_dir / "final", staging)
    rows = export_all(staging, config)
    onnx, int8 = rows
    assert (onnx["export"], onnx["metric"], onnx["precision"]) == ("onnx", "incidents/ndcg@10", "fp32")
    assert abs(onnx["delta"]) <= 1e-3 and onnx["min_cosine"] >= 0.9999 and onnx["within_target"]
    assert int8["ci_low"] <= int8["delta"] <= int8["ci_high"] and int8["value"] == pytest.approx(
        int8["pytorch"] + int8["delta"])
    assert onnx["size_bytes"] == (staging / "onnx" / "model.onnx").stat().st_size and onnx["speed_ratio"] > 0
    assert json.loads((staging / "eval_exports.json").read_text())["exports"] == rows
    section = exports_markdown(rows, staging, "my-org/incidents", is_repo=True)
    assert "| onnx (fp32) | `onnx/model.onnx` | incidents/ndcg@10:" in section
    assert "snapshot_download('my-org/incidents')" in section


def test_intermediate_export_is_not_published(tiny_run, tmp_path):
    run_dir, config = tiny_run
    shutil.copytree(run_dir / "final", tmp_path / "staging")
    config = config.model_copy(update={"push": config.push.model_copy(update={"export": ("onnx_int8",)})})
    export_all(tmp_path / "staging", config)
    assert sorted(p.name for p in (tmp_path / "staging" / "onnx").iterdir()) == ["model_qint8_quantized.onnx"]


def test_fp32_export_of_another_model_stops_the_publish(tiny_run, tmp_path):
    import torch
    from sentence_transformers import SentenceTransformer

    run_dir, config = tiny_run
    other = SentenceTransformer(str(run_dir / "final"), device="cpu")
    with torch.no_grad():
        for parameter in other.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    other.save_pretrained(str(tmp_path / "other"))
    shutil.copytree(run_dir / "final", tmp_path / "staging")
    (tmp_path / "staging" / "onnx").mkdir()
    build_onnx(folder=tmp_path / "other", source=None, target=tmp_path / "staging" / EXPORTS["onnx"].file)
    rows = parity_rows(tmp_path / "staging", ["onnx"], config, parity_sets(config))
    with pytest.raises(UserError, match=r"An fp32 export does not reproduce the PyTorch model, so nothing was "
                                        r"published: onnx: incidents/ndcg@10 .* min per-text cosine 0\.\d+ "
                                        r"\(needed >= 0\.9999\)"):
        check_parity(rows)


def test_openvino_export_matches_pytorch(exported, tmp_path):
    pytest.importorskip("openvino")
    folder = tmp_path / "model"
    shutil.copytree(exported, folder)
    build_exports(folder, ["openvino"], folder)
    assert (folder / "openvino" / "openvino_model.bin").is_file()
    fp32 = ExportEncoder(folder, folder / EXPORTS["openvino"].file, "openvino").encode(TEXTS)
    assert cosines(fp32, encode_torch(folder, TEXTS)).min() >= 0.9999


def test_openvino_int8_has_int8_weights(exported, tmp_path):
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    folder = tmp_path / "model"
    shutil.copytree(exported, folder)
    build_exports(folder, ["openvino_int8"], folder)
    int8 = ExportEncoder(folder, folder / EXPORTS["openvino_int8"].file, "openvino").encode(TEXTS)
    assert cosines(int8, encode_torch(folder, TEXTS)).min() > 0.95
    assert (folder / "openvino" / "openvino_model_qint8_quantized.bin").stat().st_size < \
        (folder / "openvino" / "openvino_model.bin").stat().st_size
