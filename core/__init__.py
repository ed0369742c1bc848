"""What every stage shares: model loading and identity, encoding, prompts, token windows, exports, run records."""
