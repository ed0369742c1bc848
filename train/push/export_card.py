"""The model card's section on exports: the parity table, and how to run an export with ONNX Runtime directly.

The library loads an export with ``SentenceTransformer(path, backend="onnx")``, but that needs ``optimum``, which
cannot be installed beside transformers 5 today; so the card shows the few lines that run it without the library
(tokenizer -> ONNX Runtime -> the model's pooling -> normalisation). ``tests/test_export.py`` runs exactly those lines.
"""

from __future__ import annotations

from pathlib import Path

from core.onnx_encoder import read_pipeline

# mode -> numpy expression over tokens (b, t, d) and mask (b, t, 1), as the library's Pooling module computes it
POOLING_CODE = {
    "mean": "(tokens * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None)",
    "mean_sqrt_len_tokens": "(tokens * mask).sum(1) / np.sqrt(np.clip(mask.sum(1), 1e-9, None))",
    "max": "np.where(mask > 0, tokens, -np.inf).max(1)",
    "cls": "tokens[:, 0]",
    "lasttoken": "tokens[np.arange(len(tokens)), mask[..., 0].sum(1).astype(int) - 1]",
    "weightedmean": "(tokens * mask * np.arange(1, mask.shape[1] + 1)[None, :, None]).sum(1) / "
                    "(mask * np.arange(1, mask.shape[1] + 1)[None, :, None]).sum(1)",
}


def _cell(value: float | None, digits: int = 4, sign: bool = False) -> str:
    return "n/a" if value is None else f"{value:{'+' if sign else ''}.{digits}f}"


def exports_table(rows: list[dict]) -> str:
    """Markdown table of the parity rows (``train.push.export_parity.parity_rows``)."""
    lines = ["| export | file | primary metric: PyTorch -> export | delta [95% CI] | min per-text cosine | "
             "encode speed vs PyTorch | size | within target |", "|---|---|---|---|---:|---:|---:|---|"]
    for r in rows:
        delta = f"{_cell(r['delta'], 5, True)} [{_cell(r['ci_low'], 5, True)}, {_cell(r['ci_high'], 5, True)}]"
        lines.append(f"| {r['export']} ({r['precision']}) | `{r['file']}` | {r['metric']}: {_cell(r['pytorch'])} -> "
                     f"{_cell(r['value'])} | {delta} | {r['min_cosine']:.6f} | {r['speed_ratio']:.2f}x | "
                     f"{r['size_bytes'] / 1e6:.1f} MB | {'yes' if r['within_target'] else 'no'} |")
    return "\n".join(lines)


def onnxruntime_snippet(folder: Path, model_ref: str, export_file: str = "onnx/model.onnx",
                        is_repo: bool = False) -> str:
    """Python that embeds two texts with the export, ONNX Runtime and numpy only (plus the tokenizer).

    Args:
        folder: the published folder (its pooling and normalisation decide the code).
        model_ref: what the reader loads: the Hub repo id, or the folder path.
        is_repo: ``model_ref`` is a Hub repo (downloaded with snapshot_download first).
    """
    pipeline = read_pipeline(folder)
    pooled = [POOLING_CODE[mode] for mode in pipeline.pooling]
    pooling = pooled[0] if len(pooled) == 1 else f"np.concatenate([{', '.join(pooled)}], axis=1)"
    where = (f"from huggingface_hub import snapshot_download\n\nfolder = snapshot_download({model_ref!r})"
             if is_repo else f"folder = {model_ref!r}")
    lines = ["import numpy as np", "import onnxruntime as ort", "from transformers import AutoTokenizer", where,
             "tokenizer = AutoTokenizer.from_pretrained(folder)",
             f"session = ort.InferenceSession(f\"{{folder}}/{export_file}\", providers=[\"CPUExecutionProvider\"])",
             "texts = [\"the first text\", \"another text\"]",
             f"batch = tokenizer(texts, padding=True, truncation=True, max_length={pipeline.max_seq_length}, "
             "return_tensors=\"np\")",
             "feed = {i.name: batch[i.name].astype(np.int64) for i in session.get_inputs()}",
             "tokens = session.run(None, feed)[0]  # (texts, tokens, hidden)",
             "mask = batch[\"attention_mask\"][..., None].astype(np.float32)  # (texts, tokens, 1)",
             f"vectors = {pooling}  # pooling: {', '.join(pipeline.pooling)}"]
    if pipeline.normalize:
        lines.append("vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)  # the Normalize module")
    return "\n".join(lines)


def exports_markdown(rows: list[dict], folder: Path, model_ref: str, is_repo: bool = False) -> str:
    """The card's section: the table, then how to load an export with the library and without it."""
    if not rows:
        return ""
    files = ", ".join(f"`{r['file']}`" for r in rows)
    onnx_file = next((r["file"] for r in rows if r["backend"] == "onnx"), None)
    parts = ["## Exports (ONNX / OpenVINO)", "",
             f"This repository also holds {files}, each checked against the PyTorch model on the set of the primary "
             "metric (fp32: |delta| <= 0.001 and every per-text cosine >= 0.9999; int8: target |delta| <= 0.005). "
             "Speed is the encode time of PyTorch fp32 over the export's, on the same texts in the same process.",
             "", exports_table(rows), "",
             "With sentence-transformers' optional extra (`pip install sentence-transformers[onnx]` or "
             "`[openvino]`, which need `optimum`):", "", "```python",
             f"model = SentenceTransformer({model_ref!r}, backend={rows[0]['backend']!r}, "
             f"model_kwargs={{\"file_name\": {rows[0]['file']!r}}})", "```"]
    if onnx_file:
        parts += ["", "With ONNX Runtime alone (`pip install onnxruntime transformers`):", "", "```python",
                  onnxruntime_snippet(folder, model_ref, onnx_file, is_repo), "```"]
    return "\n".join(parts) + "\n"
