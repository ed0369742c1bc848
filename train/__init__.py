"""Training stage: base model, loss registry, trainer wrapper, and ``python -m train.push``."""
