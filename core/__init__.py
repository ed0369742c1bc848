"""What every stage shares: model loading and identity, encoding, prompts, token windows, BM25, exports, run records."""
