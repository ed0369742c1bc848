"""The card's snippet for a retrieval system (``train.push.system``): plain sentence-transformers and bm25s code that
ranks a corpus exactly as the evaluation ranked it, so the number in the card can be reproduced from the card.

Each part mirrors one evaluation module, and ``tests/test_system.py`` runs the assembled text against it:

| part | mirrors |
|---|---|
| ``top`` | ``evaluate.retrieval.metrics.rank_documents``: score descending, then document id descending |
| ``windows`` | ``core.windows.split_documents`` / ``window_spans``: cuts between words, ``overlap`` tokens shared |
| ``dense`` | ``evaluate.tasks.retrieval.search`` (+ ``chunking.maxp``): the model's similarity, prompts by role |
| ``keyword`` | ``evaluate.retrieval.keyword.bm25_run``: same tokenizer, stemmer, stopwords, Lucene k1 b |
| ``search`` | ``evaluate.retrieval.fusion.convex`` / ``rrf`` over each run's top 100 |
"""

from __future__ import annotations

HEAD = '''\
# pip install "sentence-transformers>=6.2,<7"{extra}
{imports}from sentence_transformers import SentenceTransformer

model = SentenceTransformer({ref})
QUERY_PROMPT, DOCUMENT_PROMPT = {query_prompt}, {document_prompt}  # the prompts the evaluation encoded with
DEPTH = {depth}  # documents each ranking keeps per query, as the evaluation kept them


def top(scores, depth=DEPTH):
    """The best documents first; equal scores by document id, descending (trec_eval's order)."""
    return dict(sorted(scores.items(), key=lambda item: (item[1], item[0]), reverse=True)[:depth])
'''

WINDOWS = '''

MAX_TOKENS, OVERLAP = {max_tokens}, {overlap}  # token windows; a document scores its best window (MaxP)
FIRST_WHOLE = {first_whole}  # the first window is the whole text, which the model truncates at MAX_TOKENS tokens


def windows(text):
    """The document as substrings of at most MAX_TOKENS tokens, consecutive ones sharing OVERLAP tokens, cut
    between words where a word boundary is within reach."""
    encoded = model.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    offsets, words, n = encoded["offset_mapping"], encoded.word_ids(), len(encoded["offset_mapping"])
    cuts = [j for j in range(1, n) if words[j] != words[j - 1]]  # where a window may begin or end
    spans, start = [], 0
    while n - start > MAX_TOKENS:
        end = start + MAX_TOKENS if FIRST_WHOLE and not spans else \
            max([c for c in cuts if start < c <= start + MAX_TOKENS], default=start + MAX_TOKENS)
        spans.append((start, end))
        back = [c for c in cuts if start < c <= end - OVERLAP]
        ahead = [c for c in cuts if end - OVERLAP < c < end]
        start = max(back) if back else min(ahead) if ahead else end
    if not spans:
        return [text]
    pieces = [text[offsets[s][0]:offsets[e - 1][1]] for s, e in [*spans, (start, n)]]
    return [text, *pieces[1:]] if FIRST_WHOLE else pieces
'''

DENSE = '''

def dense(queries, corpus):
    """query id -> {{doc id: similarity}}, the model's top DEPTH documents."""
    doc_ids = list(corpus)
    q = model.encode_query(list(queries.values()), prompt=QUERY_PROMPT, convert_to_tensor=True)
    d = model.encode_document([corpus[i] for i in doc_ids], prompt=DOCUMENT_PROMPT, convert_to_tensor=True)
    scores = model.similarity(q, d).tolist()  # (n_queries, n_docs)
    return {{q_id: top(dict(zip(doc_ids, row))) for q_id, row in zip(queries, scores)}}
'''

DENSE_MAXP = '''

def dense(queries, corpus):
    """query id -> {{doc id: its best window's similarity}}, the model's top DEPTH documents."""
    pieces = [(doc, text) for doc in corpus for text in windows(corpus[doc])]
    q = model.encode_query(list(queries.values()), prompt=QUERY_PROMPT, convert_to_tensor=True)
    d = model.encode_document([text for _, text in pieces], prompt=DOCUMENT_PROMPT, convert_to_tensor=True)
    run = {{}}
    for q_id, row in zip(queries, model.similarity(q, d).tolist()):  # (n_queries, n_windows)
        best = {{}}
        for (doc, _), score in zip(pieces, row):
            best[doc] = max(score, best.get(doc, score))
        run[q_id] = top(best)
    return run
'''

KEYWORD = '''

STEMMER = {stemmer}


def tokens(texts):
    return bm25s.tokenize(list(texts), lower=True, token_pattern={pattern}, stopwords={stopwords}, stemmer=STEMMER,
                          return_ids=False, show_progress=False)


def keyword(queries, corpus):
    """query id -> {{doc id: BM25 score}}: the top DEPTH documents sharing a term with the query."""
    doc_ids = list(corpus)
    index = bm25s.BM25(method={method}, k1={k1}, b={b})
    index.index(tokens(corpus[i] for i in doc_ids), show_progress=False)
    run = {{}}
    for q_id, words in zip(queries, tokens(queries.values())):
        ids = index.get_tokens_ids(words)  # words the corpus never uses are dropped
        scores = index.get_scores_from_ids(ids).tolist() if ids else [0.0] * len(doc_ids)
        run[q_id] = top({{doc: s for doc, s in zip(doc_ids, scores) if s > 0}})
    return run
'''

CONVEX = '''

WEIGHT = {weight}  # the model's share, chosen on the dev split


def min_max(scores):
    """One query's scores mapped onto [0, 1] (all equal: all 1)."""
    if not scores:
        return {{}}
    low, high = min(scores.values()), max(scores.values())
    return {{d: (s - low) / (high - low) if high > low else 1.0 for d, s in scores.items()}}


def search(queries, corpus):
    """WEIGHT x min-max(model) + (1 - WEIGHT) x min-max(BM25); a document one ranking did not return gets 0 from it."""
    a, b = dense(queries, corpus), keyword(queries, corpus)
    run = {{}}
    for q_id in dict.fromkeys([*a, *b]):
        x, y = min_max(a.get(q_id, {{}})), min_max(b.get(q_id, {{}}))
        run[q_id] = top({{d: WEIGHT * x.get(d, 0.0) + (1 - WEIGHT) * y.get(d, 0.0) for d in dict.fromkeys([*x, *y])}})
    return run
'''

RRF = '''

RRF_K = {k}


def search(queries, corpus):
    """Reciprocal rank fusion: each document scores the sum of 1 / (RRF_K + rank) over the rankings that hold it."""
    run = {{}}
    for ranking in (dense(queries, corpus), keyword(queries, corpus)):
        for q_id, docs in ranking.items():
            fused = run.setdefault(q_id, {{}})
            for rank, doc in enumerate(top(docs, len(docs)), start=1):
                fused[doc] = fused.get(doc, 0.0) + 1.0 / (RRF_K + rank)
    return {{q_id: top(docs) for q_id, docs in run.items()}}
'''

ALONE = '''

search = dense
'''

EXAMPLE = '''

corpus = {"doc1": "Bake the loaf at 220 degrees until the crust sounds hollow.",
          "doc2": "The coastal ferry leaves the harbour every hour."}
queries = {"q1": "how long to bake sourdough bread"}
for q_id, docs in search(queries, corpus).items():
    print(q_id, list(docs)[:10])
'''


def snippet_text(name: str, settings: dict, ref: str) -> str:
    """The snippet of system ``name`` ('model', 'chunked', 'hybrid_convex', 'hybrid_rrf') with ``settings``
    (``train.push.system.system_settings``) and the model reference ``ref``."""
    dense, bm25, fusion = settings["dense"], settings.get("bm25"), settings.get("fusion")
    hybrid = fusion is not None
    extra = ' bm25s "PyStemmer>=2.2,<4"' if hybrid and bm25.get("stemmer") != "none" else " bm25s" if hybrid else ""
    imports = ("import bm25s\n" + ("import Stemmer\n" if bm25.get("stemmer") != "none" else "")) if hybrid else ""
    text = HEAD.format(extra=extra, imports=imports, ref=repr(ref), query_prompt=repr(dense["prompts"]["query"]),
                       document_prompt=repr(dense["prompts"]["document"]),
                       depth=(fusion or {}).get("depth", 100))
    if dense.get("chunking"):
        text += WINDOWS.format(**{"first_whole": False, **dense["chunking"]}) + DENSE_MAXP.format()
    else:
        text += DENSE.format()
    if hybrid:
        stemmer = "None" if bm25["stemmer"] == "none" else f"Stemmer.Stemmer({bm25['stemmer']!r})"
        text += KEYWORD.format(stemmer=stemmer, pattern=repr(bm25["token_pattern"]), stopwords=repr(bm25["stopwords"]),
                               method=repr(bm25["method"]), k1=bm25["k1"], b=bm25["b"])
        text += CONVEX.format(weight=fusion["weight"]) if fusion["method"] == "convex" else RRF.format(k=fusion["k"])
    else:
        text += ALONE
    return text + EXAMPLE
