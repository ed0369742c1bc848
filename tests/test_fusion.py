"""Hybrid fusion (evaluate/retrieval/fusion.py): known answers for RRF and the convex mix, and a weight
chosen on dev."""

from __future__ import annotations

import pytest

from evaluate.retrieval.fusion import WEIGHT_GRID, choose_weight, convex, min_max, rrf

DENSE = {"q": {"a": 0.9, "b": 0.8, "c": 0.5}}
KEYWORD = {"q": {"c": 12.0, "d": 6.0, "a": 3.0}}


def test_rrf_sums_reciprocal_ranks():
    fused = rrf([DENSE, KEYWORD], k=60)
    expected = {"a": 1 / 61 + 1 / 63, "c": 1 / 63 + 1 / 61, "b": 1 / 62, "d": 1 / 62}
    assert fused["q"] == pytest.approx(expected)
    assert list(fused["q"]) == ["c", "a", "d", "b"]  # equal sums: doc id descending, as trec_eval ranks ties


def test_rrf_ranks_by_score_not_by_dict_order():
    shuffled = {"q": {"c": 0.5, "a": 0.9, "b": 0.8}}
    assert rrf([shuffled, KEYWORD]) == rrf([DENSE, KEYWORD])


def test_rrf_keeps_every_query_and_cuts_at_depth():
    fused = rrf([DENSE, {"other": {"x": 1.0}}], depth=2)
    assert fused == {"q": {"a": 1 / 61, "b": 1 / 62}, "other": {"x": 1 / 61}}


def test_min_max_maps_onto_zero_one():
    assert min_max({"a": 3.0, "b": 12.0, "c": 6.0}) == pytest.approx({"a": 0.0, "b": 1.0, "c": 1 / 3})
    assert min_max({"a": 2.0, "b": 2.0}) == {"a": 1.0, "b": 1.0}
    assert min_max({}) == {}


def test_convex_mixes_normalised_scores():
    fused = convex(DENSE, KEYWORD, weight=0.25)["q"]
    # dense min-max: a 1, b 0.75, c 0; keyword: c 1, d 1/3, a 0; a document a run did not find gets 0 from it
    expected = {"a": 0.25, "b": 0.25 * 0.75, "c": 0.75, "d": 0.75 / 3}
    assert fused == pytest.approx(expected)
    assert list(fused) == ["c", "d", "a", "b"]


def test_convex_at_the_ends_keeps_one_run_order():
    # a run's lowest document normalises to 0, as does one it did not retrieve: they tie and doc id decides
    assert list(convex(DENSE, KEYWORD, 1.0)["q"]) == ["a", "b", "d", "c"]
    assert list(convex(DENSE, KEYWORD, 0.0)["q"]) == ["c", "d", "b", "a"]


def test_convex_rejects_a_weight_outside_zero_one():
    with pytest.raises(ValueError, match=r"a convex weight must be in \[0, 1\]; got 1.5"):
        convex(DENSE, KEYWORD, 1.5)


def test_choose_weight_follows_the_better_run_on_dev():
    dense, keyword, qrels = {"q": {"a": 1.0, "c": 0.0}}, {"q": {"c": 1.0, "a": 0.99, "z": 0.0}}, {"q": {"c": 1}}
    # c = 1 - w, a = w + 0.99 (1 - w): only the pure keyword run (w = 0) puts the relevant c first
    assert choose_weight(dense, keyword, qrels) == 0.0
    assert choose_weight(keyword, dense, qrels) == 1.0


def test_choose_weight_prefers_the_even_mix_on_a_flat_curve():
    same = {"q": {"a": 2.0, "b": 1.0}}
    assert choose_weight(same, same, {"q": {"a": 1}}) == 0.5


def test_choose_weight_picks_an_interior_weight_when_only_a_mix_wins():
    dense = {"q1": {"x": 1.0, "r1": 0.9, "y": 0.0}, "q2": {"r2": 1.0, "z": 0.0}}
    keyword = {"q1": {"r1": 1.0, "x": 0.0}, "q2": {"z": 1.0, "w": 0.5, "r2": 0.0}}
    qrels = {"q1": {"r1": 1}, "q2": {"r2": 1}}
    # q1: r1 = 0.9w + (1 - w) beats x = w when w < 1/1.1; q2: r2 = w beats z = 1 - w when w > 0.5 (at 0.5 they tie
    # and z wins on doc id). Both right for w in 0.6 ... 0.9; of those the nearest to 0.5 is chosen.
    assert choose_weight(dense, keyword, qrels) == 0.6
    assert WEIGHT_GRID == (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def test_choose_weight_needs_a_grid():
    with pytest.raises(ValueError, match="the weight grid is empty"):
        choose_weight(DENSE, KEYWORD, {"q": {"c": 1}}, grid=())
