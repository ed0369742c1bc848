"""retrieval: each query searches the corpus by the model's similarity; trec_eval's metrics per query.

| reads (kind)             | unit  | metrics                                                |
|--------------------------|-------|--------------------------------------------------------|
| pairs, triplets, labeled | query | ndcg@10, mrr@10, map@100, recall@1/10/100 (trec_eval)  |

Reference rankings by other systems (BM25, hybrids, rerankers) enter as ``TaskResult.extra_runs`` (name -> run) and
are scored by ``result_from_run`` on the same queries, so their per-query metrics pair up with the tuned model's.
Queries, corpus and graded qrels come from ``evaluate.retrieval.qrels.retrieval_sets``.

Long documents (``evaluate.chunking``, ``prepare``): with ``mode: auto`` (the default) a set is chunked when at least
``auto_share`` of its documents are longer than the model reads; each document then scores its best window (MaxP), and
the run of the whole documents (the model reading only their first tokens) is kept as ``extra_runs["truncated"]``
for the report's ``truncated`` row. The dev split follows the same decision (``chunk_like``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping

import numpy as np

from core.embed import Embeddings
from core.prompts import model_prompt
from core.windows import resolve_max_tokens, split_documents, token_limit
from data.table import Table
from evaluate.retrieval.chunking import maxp, search_depth
from evaluate.retrieval.metrics import evaluate_run, rank_documents, run_from_scores
from evaluate.retrieval.qrels import retrieval_sets
from evaluate.retrieval.reference_rows import RetrievalSet, Truncated, Tuned, reference_rows
from evaluate.significance import DeltaStats, compare_means
from evaluate.tasks.spec import Run, TaskResult, TaskSpec
from evaluate.tasks.summaries import RANKING_MEANINGS, retrieval_about, retrieval_lines

RETRIEVAL_METRICS = ("ndcg@10", "mrr@10", "map@100", "recall@1", "recall@10", "recall@100")
TOP_K = 100
CORPUS_CHUNK = 50_000  # documents scored at once: memory stays (n_queries, CORPUS_CHUNK) floats
MAX_QUERIES, WINS_AND_LOSSES, TOP_DOCS = 2000, 10, 5  # what details.json keeps
Sets = tuple[dict[str, str], dict[str, str], dict[str, dict[str, int]]]  # (queries, corpus, graded qrels)


def search(queries: dict[str, str], corpus: dict[str, str], emb: Embeddings, k: int = TOP_K) -> Run:
    """Top-k documents per query by the model's similarity (queries and documents under their own prompts)."""
    q_ids, d_ids = list(queries), list(corpus)
    chunks = ((d_ids[s:s + CORPUS_CHUNK], emb([corpus[i] for i in d_ids[s:s + CORPUS_CHUNK]], "document"))
              for s in range(0, len(d_ids), CORPUS_CHUNK))
    return search_vectors(q_ids, emb([queries[i] for i in q_ids], "query"), chunks, k, score=emb.scores)


def search_vectors(q_ids: list[str], q: np.ndarray, doc_chunks: Iterable[tuple[list[str], np.ndarray]],
                   k: int = TOP_K, score: Callable | None = None) -> Run:
    """Running top k over corpus chunks: memory is one (n_queries, chunk) score block, whatever the corpus size.

    Args:
        q_ids: query ids, one per row of ``q``.
        q: (n_queries, dim) query vectors.
        doc_chunks: (doc ids, (chunk, dim) vectors) pairs covering the corpus.
        k: documents kept per query, in trec_eval's order (score desc, then doc id desc).
        score: (q, chunk vectors) -> (n_queries, chunk) similarity; None: the dot product.
    """
    run: Run = {i: {} for i in q_ids}
    for chunk_ids, vectors in doc_chunks:
        scores = score(q, vectors) if score else q @ vectors.T  # (n_queries, chunk)
        for q_id, docs in run_from_scores(q_ids, chunk_ids, scores, k).items():
            merged = {**run[q_id], **docs}
            run[q_id] = {d: merged[d] for d in rank_documents(merged)[:k]}
    return run


def result_from_run(run: Run, sets: Sets, *, ignore_identical_ids: bool) -> TaskResult:
    """trec_eval's metrics of any ranking of the queries in ``sets`` (the model's, or a reference system's)."""
    scores = evaluate_run(run, sets[2], k_values=(1, 10, 100), missing_queries="zero",
                          ignore_identical_ids=ignore_identical_ids)
    q_ids = sorted(scores["per_query"])
    per_query = {m: np.array([scores["per_query"][q][m] for q in q_ids]) for m in RETRIEVAL_METRICS}
    return TaskResult({m: float(v.mean()) for m, v in per_query.items()}, per_query=per_query, query_ids=q_ids,
                      run=run, retrieval=sets)


def _top(result: TaskResult, q_id: str) -> list[dict]:
    queries, corpus, qrels = result.retrieval
    return [{"text": corpus[d], "score": s, "relevant": qrels[q_id].get(d, 0) > 0}
            for d, s in list(result.run[q_id].items())[:TOP_DOCS]]


def first_relevant_rank(result: TaskResult, q_id: str) -> int | None:
    """Rank (1 = top) of the first relevant document in the model's top documents; None: none of them is."""
    qrels = result.retrieval[2][q_id]
    return next((k for k, d in enumerate(result.run[q_id], start=1) if qrels.get(d, 0) > 0), None)


def _side(result: TaskResult, i: int, q_id: str) -> dict:
    return {"ndcg@10": float(result.per_query["ndcg@10"][i]), "top": _top(result, q_id),
            "first_relevant_rank": first_relevant_rank(result, q_id), "depth": len(result.run[q_id])}


def query_details(base: TaskResult, tuned: TaskResult) -> list[dict]:
    """The biggest per-query nDCG@10 wins and losses of the tuned model, with both models' top documents."""
    queries, corpus, qrels = base.retrieval
    delta = tuned.per_query["ndcg@10"] - base.per_query["ndcg@10"]  # (n_queries,), aligned by query id
    order = np.argsort(delta, kind="stable")  # stable: tied queries keep their order on every CPU (SIMD sorts differ)
    picked = [i for i in [*order[::-1][:WINS_AND_LOSSES], *order[:WINS_AND_LOSSES]] if delta[i] != 0]
    out = []
    for i in dict.fromkeys(picked):
        q_id = base.query_ids[i]
        relevant = [corpus[d] for d, r in qrels[q_id].items() if r > 0 and d in corpus]
        out.append({"query": queries[q_id], "relevant": relevant, "delta": float(delta[i]),
                    "baseline": _side(base, i, q_id), "tuned": _side(tuned, i, q_id)})
    return out


def score_samples(result: TaskResult, emb: Embeddings, seed: int) -> tuple[list[float], list[float]]:
    """Similarities of queries with their relevant documents, and with as many random non-relevant ones."""
    queries, corpus, qrels = result.retrieval
    rng, doc_ids = np.random.default_rng(seed), list(corpus)
    positive, negative = [], []
    for q_id in result.query_ids[:MAX_QUERIES]:
        q = emb([queries[q_id]], "query")  # (1, dim)
        relevant = [d for d, r in qrels[q_id].items() if r > 0 and d in corpus]
        others = [doc_ids[j] for j in rng.choice(len(doc_ids), size=min(len(doc_ids), 3), replace=False)]
        positive += [float(v) for v in emb.scores(q, emb([corpus[d] for d in relevant], "document"))[0]]
        negative += [float(v) for v in emb.scores(q, emb([corpus[d] for d in others if d not in relevant],
                                                         "document"))[0]]
    return positive, negative


class RetrievalTask(TaskSpec):
    name = "retrieval"
    kinds = ("pairs", "triplets", "labeled")
    metrics = RETRIEVAL_METRICS
    main = "ndcg@10"
    unit = "judged queries"
    metric_meanings = RANKING_MEANINGS
    hub_task_type = "information-retrieval"  # sentence-transformers' InformationRetrievalEvaluator
    legend = ("retrieval: units are queries; p from a paired sign-flip test of the per-query differences; the 95% "
              "interval holds every mean difference that test would not reject at the 5% level.")
    map_look_for = ("Look for each query (circle) sitting nearer the documents (squares) it should find, in the tuned "
                    "panel than in the baseline's: a query near its relevant document ranks it high.")

    def texts(self, table: Table, *, full_corpus: bool) -> dict[str, list[str]]:
        queries, corpus, _ = retrieval_sets(table, full_corpus)
        # Chunked: the windows too (a document that fits one window is its own window, so it is encoded once); the
        # whole documents stay for the report's score samples and map.
        # Only windows of the documents searched: the dev evaluator (full_corpus=False) ranks the dev split's own
        # documents, so it must not encode the windows of the whole corpus at every dev evaluation.
        windows = [text for window, text in table.windows.corpus.items() if table.windows.doc_of[window] in corpus] \
            if table.windows else []
        return {"query": list(queries.values()), "document": list(corpus.values()) + windows}

    def run(self, table: Table, emb: Embeddings, *, full_corpus: bool, ignore_identical_ids: bool) -> TaskResult:
        sets = retrieval_sets(table, full_corpus)
        depth = TOP_K + int(ignore_identical_ids)  # one spare for a dropped self-match
        whole = search(sets[0], sets[1], emb, k=depth)  # each document as the model reads it: its first tokens
        if not table.windows:
            return result_from_run(whole, sets, ignore_identical_ids=ignore_identical_ids)
        # MaxP: a document scores its best window, so nothing past the model's limit is ignored. The windows of
        # the documents outside this set's corpus (full_corpus=False) are left out.
        windows = {w: t for w, t in table.windows.corpus.items() if table.windows.doc_of[w] in sets[1]}
        window_run = search(sets[0], windows, emb, k=search_depth(depth, table.windows))
        result = result_from_run(maxp(window_run, table.windows.doc_of, k=depth), sets,
                                 ignore_identical_ids=ignore_identical_ids)
        result.extra_runs["truncated"] = whole
        return result

    def prepare(self, table: Table, model, settings, *, decide_on: Table | None = None) -> tuple[Table, dict]:
        """The table as evaluated (split into windows when ``evaluate.chunking`` says so) and the note report.json
        keeps as ``about.long_documents``: how many documents exceed the model's limit, whether the set was chunked
        and why.

        Args:
            model: the model whose tokenizer and max_seq_length define "longer than the model reads".
            settings: the run's ``EvaluateConfig`` (its ``chunking``).
            decide_on: the table whose documents decide ``auto`` (default: ``table``); the dev split passes the test
                set's, so dev and test are evaluated the same way.
        """
        limit = token_limit(model, model_prompt(model, "document")[0])
        note = long_documents(decide_on or table, model, limit, settings.chunking)
        if note["chunked"] is not None:
            table = chunk_like(table, model, settings, chunked=True)
            windows, size = table.windows, windows_size(model, settings)[0]
            note["chunked"].update({"documents": windows.chunked, "windows": len(windows.corpus), "max_tokens": size,
                                    "overlap": settings.chunking.overlap, "max_windows": windows.max_windows,
                                    "first_whole": size == limit})
        return table, note

    def count_units(self, table: Table) -> int:
        return len(retrieval_sets(table, full_corpus=False)[0])

    def about(self, table: Table, result: TaskResult) -> dict:
        """Queries, corpus, relevant documents per query and grades, and the queries no model can score above 0."""
        return {**retrieval_about(*result.retrieval[:3]), **unscorable(*result.retrieval[:3])}

    def about_lines(self, about, quote=str) -> list[str]:
        return retrieval_lines(about, quote)

    def delta(self, metric: str, base: TaskResult, tuned: TaskResult, *, seed: int) -> DeltaStats:
        if base.query_ids != tuned.query_ids:
            raise RuntimeError("baseline and tuned were scored on different queries")
        return compare_means(base.per_query[metric], tuned.per_query[metric], seed=seed)

    def details(self, table: Table, base: TaskResult, tuned: TaskResult, embeddings: tuple[Embeddings, Embeddings],
                *, seed: int) -> dict:
        (pos_b, neg_b), (pos_t, neg_t) = (score_samples(r, e, seed) for r, e in zip((base, tuned), embeddings))
        delta = tuned.per_query["ndcg@10"] - base.per_query["ndcg@10"]  # (n_queries,)
        return {"queries": query_details(base, tuned), "positive_scores": {"baseline": pos_b, "tuned": pos_t},
                "negative_scores": {"baseline": neg_b, "tuned": neg_t},
                "per_query_delta": {"metric": "ndcg@10", "values": delta.tolist()}}

    def map_inputs(self, table: Table, base: TaskResult) -> tuple[list[str], list[str], list[str]]:
        queries, corpus, qrels = base.retrieval
        relevant = list(dict.fromkeys(d for q in qrels.values() for d, r in q.items() if r > 0 and d in corpus))
        return (list(queries.values()) + [corpus[d] for d in relevant],
                ["query"] * len(queries) + ["relevant document"] * len(relevant),
                ["query"] * len(queries) + ["document"] * len(relevant))


    uses_dev = True  # the hybrid's convex weight is chosen on dev, never on test

    def references(self, tuned: TaskResult, *, settings, ignore_identical_ids: bool, dev: TaskResult | None,
                   seed: int, baseline: TaskResult | None = None) -> dict[str, dict]:
        """The truncated rows of a chunked set, BM25 and hybrid rows (``evaluate.keyword``) and reranked rows
        (``evaluate.rerank``), each paired per query against what it refines (see evaluate.retrieval.reference_rows).
        ``baseline``: the baseline's result, for the baseline's truncated row."""
        truncated = None
        if "truncated" in tuned.extra_runs:
            base = Tuned(baseline.run, baseline.query_ids, baseline.per_query) if baseline else None
            truncated = Truncated(tuned.extra_runs["truncated"], base,
                                  baseline.extra_runs.get("truncated") if baseline else None)
        if not settings.keyword and settings.rerank is None and truncated is None:
            return {}
        rows = reference_rows(
            RetrievalSet(*tuned.retrieval), Tuned(tuned.run, tuned.query_ids, tuned.per_query),
            keyword=settings.keyword, rerank=settings.rerank, truncated=truncated,
            dev=RetrievalSet(*dev.retrieval) if dev else None, dev_tuned_run=dev.run if dev else None,
            ignore_identical_ids=ignore_identical_ids, seed=seed)
        return {name: row.as_report() for name, row in rows.items()}


def long_documents(table: Table, model, limit: int, chunking) -> dict:
    """How many of the table's documents are longer than ``limit`` tokens, and whether (and why) its set is chunked.

    Args:
        chunking: ``evaluate.chunking`` (a ``ChunkingConfig``, or None: never).

    Returns:
        {documents, token_limit, longer_than_limit, share, chunked: None or {mode, reason, auto_share}}.
    """
    corpus = retrieval_sets(table, full_corpus=True)[1]
    over = split_documents(corpus, model.tokenizer, limit, 0).chunked
    share = over / len(corpus) if corpus else 0.0
    note = {"documents": len(corpus), "token_limit": limit, "longer_than_limit": over, "share": share}
    mode = chunking.mode if chunking is not None else "never"
    threshold = chunking.auto_share if chunking is not None else None
    if mode == "always":
        reason = "evaluate.chunking.mode is 'always'"
    elif mode == "auto" and over > 0 and share >= threshold:
        reason = (f"auto: {share:.1%} of the documents are longer than the {limit} tokens the model reads "
                  f"(threshold evaluate.chunking.auto_share {threshold:.0%})")
    else:
        note["not_chunked_because"] = (
            "evaluate.chunking is off (mode 'never')" if mode == "never" else
            f"auto: {share:.1%} of the documents are longer than the {limit} tokens the model reads, below the "
            f"threshold evaluate.chunking.auto_share {threshold:.0%}")
        return {**note, "chunked": None}
    return {**note, "chunked": {"mode": mode, "reason": reason, "auto_share": threshold}}


def chunk_like(table: Table, model, settings, chunked: bool) -> Table:
    """``table`` split into windows exactly when the set it goes with was (``chunked``), with the same settings: the
    dev split of a chunked test set is evaluated chunked, so what is chosen on dev (the hybrid's weight, the best
    checkpoint) is chosen for the system the test set measures."""
    if not chunked or settings.chunking is None:
        return table
    size, limit = windows_size(model, settings)
    windows = split_documents(retrieval_sets(table, full_corpus=True)[1], model.tokenizer, size,
                              settings.chunking.overlap, first_whole=size == limit)
    return dataclasses.replace(table, windows=windows)


def windows_size(model, settings) -> tuple[int, int]:
    """(window length in tokens: ``evaluate.chunking.max_tokens`` checked against what ``model`` reads, and what it
    reads). Windows as long as what the model reads start with the document as the model reads it unchunked."""
    limit = token_limit(model, model_prompt(model, "document")[0])
    return resolve_max_tokens(settings.chunking.max_tokens, settings.chunking.overlap, limit), limit


def unscorable(queries: Mapping[str, str], corpus: Mapping[str, str], qrels: Mapping[str, Mapping[str, int]],
               examples: int = 3) -> dict:
    """Queries that score 0 whatever the ranking: none of their judged documents is both in the corpus searched and
    graded above 0 (a BEIR query whose relevant documents are missing, or judged only 0).

    Returns:
        {"unscorable_queries": count, "unscorable_query_examples": up to ``examples`` query ids, sorted}.
    """
    lost = sorted(q for q in queries if not any(grade > 0 and d in corpus for d, grade in qrels.get(q, {}).items()))
    return {"unscorable_queries": len(lost), "unscorable_query_examples": lost[:examples]}


RETRIEVAL = RetrievalTask()
