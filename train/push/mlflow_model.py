"""The MLflow model of a folder published by embtune (``push.mlflow``), logged as code by
``train.push.mlflow_registry``.

Loading it needs only mlflow and sentence-transformers, not embtune: the published folder is the model's artifact
``model``, byte for byte (the flavour ``mlflow.sentence_transformers`` would save a re-serialised copy, supports
sentence-transformers up to 6.1 in mlflow 3.17, and always loads with ``trust_remote_code=True``).

    model = mlflow.pyfunc.load_model("models:/NAME/VERSION")
    vectors = model.predict(["a text", "another text"])  # (2, dim) float32, exactly as SentenceTransformer.encode
"""

from __future__ import annotations

import mlflow
from mlflow.pyfunc import PythonModel


class SentenceEmbeddings(PythonModel):
    """predict(texts: a list of strings or a one-column DataFrame) -> (n, dim) float32 embeddings."""

    def load_context(self, context):
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(context.artifacts["model"], device="cpu", local_files_only=True)

    def predict(self, context, model_input, params=None):
        texts = model_input.iloc[:, 0].tolist() if hasattr(model_input, "iloc") else list(model_input)
        return self.model.encode([str(text) for text in texts], convert_to_numpy=True)


mlflow.models.set_model(SentenceEmbeddings())
