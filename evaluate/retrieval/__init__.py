"""Retrieval scoring: metrics, qrels, BM25, fusion, reranking, chunked (MaxP) scoring, reference rows."""
