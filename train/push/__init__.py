"""Publishing (python -m train.push): gate, card, Hub, exports' parity, privacy checks, MLflow registry."""
