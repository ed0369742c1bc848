"""Evaluation stage: the same evaluators on the untuned baseline and the tuned model, on held-out data.

Note: this folder shadows Hugging Face's ``evaluate`` library when run from the checkout; it is never installed
into site-packages (see tests/test_layout.py).
"""
