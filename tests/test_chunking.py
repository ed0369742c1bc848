"""Long-document windows and MaxP (core/windows.py, evaluate/retrieval/chunking.py), on the tiny BERT's tokenizer
and a word-piece one."""

from __future__ import annotations

import pytest

from configs.errors import UserError
from conftest import WORDS, write_vocab
from core.windows import Windows, resolve_max_tokens, split_documents, token_limit, window_spans
from evaluate.retrieval.chunking import maxp, search_depth


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import BertTokenizerFast

    path = write_vocab(tmp_path_factory.mktemp("vocab") / "vocab.txt")
    return BertTokenizerFast(vocab=str(path), do_lower_case=True)


@pytest.fixture(scope="module")
def piece_tokenizer(tmp_path_factory):
    """Splits 'database' into 'data ##base' and 'backup' into 'back ##up': windows must not cut inside them."""
    from transformers import BertTokenizerFast

    path = tmp_path_factory.mktemp("pieces") / "vocab.txt"
    path.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "data", "##base", "back", "##up",
                               "disk", "full", ".", "the"]) + "\n", encoding="utf-8")
    return BertTokenizerFast(vocab=str(path), do_lower_case=True)


def long_text(n_words: int) -> str:
    return " ".join(WORDS[i % len(WORDS)] for i in range(n_words)) + "."


def tokens(tokenizer, text: str) -> list[str]:
    return tokenizer.tokenize(text)


def test_window_spans_cover_every_token_with_overlap():
    assert window_spans([True] * 10, max_tokens=4, overlap=1) == [(0, 4), (3, 7), (6, 10)]
    assert window_spans([True] * 4, max_tokens=4, overlap=1) == [(0, 4)]
    assert window_spans([], max_tokens=4, overlap=1) == [(0, 0)]


def test_window_spans_cut_between_words():
    starts = [True, False, True, False, False, True, True, True]  # words: 0-1, 2-4, 5, 6, 7
    spans = window_spans(starts, max_tokens=4, overlap=1)
    assert spans == [(0, 2), (2, 6), (5, 8)]
    assert all(starts[s] for s, _ in spans)


def test_window_spans_split_a_word_longer_than_a_window():
    assert window_spans([True] + [False] * 6, max_tokens=3, overlap=0) == [(0, 3), (3, 6), (6, 7)]


def test_windows_are_substrings_within_the_limit_and_short_documents_stay_whole(tokenizer):
    corpus = {"long": long_text(50), "short": "Disk full on the server.", "empty": ""}
    windows = split_documents(corpus, tokenizer, max_tokens=16, overlap=4)
    assert windows.chunked == 1
    assert windows.corpus["short#0"] == corpus["short"] and windows.corpus["empty#0"] == ""
    long_windows = [w for w, doc in windows.doc_of.items() if doc == "long"]
    assert windows.max_windows == len(long_windows) > 1
    for window in long_windows:
        text = windows.corpus[window]
        assert text in corpus["long"]
        assert len(tokens(tokenizer, text)) <= 16
    joined = [t for w in long_windows for t in tokens(tokenizer, windows.corpus[w])]
    assert set(joined) == set(tokens(tokenizer, corpus["long"]))  # nothing past the limit is lost
    assert windows.describe(3) == f"1 of 3 documents chunked into {len(windows.corpus)} windows (at most " \
                                  f"{windows.max_windows} per document)"


def test_consecutive_windows_share_the_overlap(tokenizer):
    text = " ".join(WORDS[:30])  # 30 distinct in-vocabulary words, one token each
    windows = split_documents({"d": text}, tokenizer, max_tokens=10, overlap=3)
    pieces = [tokens(tokenizer, windows.corpus[f"d#{i}"]) for i in range(windows.max_windows)]
    assert [len(p) for p in pieces] == [10, 10, 10, 9]
    assert all(a[-3:] == b[:3] for a, b in zip(pieces, pieces[1:]))


def test_window_spans_first_exact_ends_where_truncation_cuts():
    starts = [True, False, True, False, False, True, True, True]  # words: 0-1, 2-4, 5, 6, 7
    assert window_spans(starts, max_tokens=4, overlap=1, first_exact=True) == [(0, 4), (2, 6), (5, 8)]


def test_first_whole_window_is_the_document_the_model_truncates(piece_tokenizer):
    text = " ".join(["database backup"] * 12)  # 48 tokens
    windows = split_documents({"d": text, "short": "disk full"}, piece_tokenizer, max_tokens=5, overlap=1,
                              first_whole=True)
    assert windows.corpus["d#0"] == text and windows.corpus["short#0"] == "disk full"
    truncated = tokens(piece_tokenizer, text)[:5]  # what the model reads of the whole text: 5 tokens, mid-word
    second = tokens(piece_tokenizer, windows.corpus["d#1"])
    assert truncated == ["data", "##base", "back", "##up", "data"]
    assert second[:1] == truncated[-1:] and len(second) <= 5  # shares the overlap (1 token), starts at a word
    later = [tokens(piece_tokenizer, windows.corpus[f"d#{i}"]) for i in range(1, windows.max_windows)]
    assert {t for piece in later for t in piece} | set(truncated) == set(tokens(piece_tokenizer, text))


def test_windows_never_start_inside_a_word(piece_tokenizer):
    text = " ".join(["database backup"] * 12)  # 4 tokens per repeat: data ##base back ##up
    windows = split_documents({"d": text}, piece_tokenizer, max_tokens=5, overlap=1)
    assert windows.chunked == 1
    for window in windows.corpus.values():
        pieces = tokens(piece_tokenizer, window)
        assert window in text and not pieces[0].startswith("##") and len(pieces) <= 5
        assert window.split()[0] in ("database", "backup")


def test_token_limit_and_max_tokens(tiny_model_dir):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tiny_model_dir), device="cpu")
    assert token_limit(model) == 62  # max_seq_length 64 minus [CLS] and [SEP]
    assert token_limit(model, prompt="disk full: ") == 59
    assert resolve_max_tokens(None, 32, 62) == 62
    assert resolve_max_tokens(40, 8, 62) == 40


def test_max_tokens_beyond_the_model_is_a_user_error():
    with pytest.raises(UserError, match=r"evaluate.chunking.max_tokens is 300, but the model reads at most 254 "
                                        r"tokens .* Set max_tokens to 254 or less"):
        resolve_max_tokens(300, 32, 254)


def test_overlap_not_below_max_tokens_is_a_user_error():
    with pytest.raises(UserError, match=r"evaluate.chunking.overlap \(64\) must be smaller than max_tokens \(64\)"):
        resolve_max_tokens(64, 64, 254)


def test_slow_tokenizer_is_a_user_error():
    from transformers import ByT5Tokenizer

    slow = ByT5Tokenizer()  # a Python tokenizer: no offset mapping
    with pytest.raises(UserError, match="evaluate.chunking needs a fast"):
        split_documents({"d": "disk full"}, slow, max_tokens=8, overlap=2)


def test_maxp_scores_a_document_by_its_best_window():
    doc_of = {"a#0": "a", "a#1": "a", "b#0": "b", "c#0": "c", "c#1": "c"}
    window_run = {"q": {"a#0": 0.2, "a#1": 0.9, "b#0": 0.5, "c#0": 0.1, "c#1": 0.3}}
    assert maxp(window_run, doc_of) == {"q": {"a": 0.9, "b": 0.5, "c": 0.3}}
    assert list(maxp(window_run, doc_of, k=2)["q"]) == ["a", "b"]


def test_search_depth_covers_every_window_of_the_top_documents():
    windows = Windows(corpus={}, doc_of={}, chunked=2, max_windows=3)
    assert search_depth(100, windows) == 300
