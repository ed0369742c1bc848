"""Significance of baseline-vs-tuned deltas: known answers, one coherent verdict, null calibration, scale invariance.

Simulated-null tests state their number of datasets: at 2,000 datasets the standard error of a 5% false-positive
rate is 0.49 percentage points, so the +-1.5 point bound is three standard errors wide.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import rankdata, spearmanr

from evaluate.significance import (
    DeltaStats,
    _bootstrap_stats,
    _resampled_ranks,
    bootstrap_interval,
    bootstrap_test,
    compare_means,
    compare_statistic,
    pearson_rows,
    rowwise,
    spearman_rows,
    statistic_delta,
)
from evaluate.tasks.pair_classification import STATISTICS as PAIR_STATISTICS

NULL_DATASETS = 2000


def per_query_scores(rng: np.random.Generator, n: int, true_delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-unit metric pairs whose population mean difference is exactly ``true_delta`` (the noise has mean 0)."""
    baseline = rng.beta(2.0, 5.0, size=n)
    return baseline, baseline + true_delta + rng.normal(0.0, 0.08, size=n)


def few_discordant(rng: np.random.Generator, n: int = 160, p_differ: float = 0.12,
                   win: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Per-query recall@10 of queries with 1-3 relevant documents: both models agree on most queries; on a few
    (share ``p_differ``) the tuned model finds one relevant document more (share ``win``) or one fewer."""
    relevant = rng.integers(1, 4, size=n)
    baseline = rng.integers(0, relevant + 1) / relevant
    step = np.where(rng.random(n) < win, 1.0, -1.0) / relevant
    differ = (rng.random(n) < p_differ) & (baseline + step >= 0) & (baseline + step <= 1)
    return baseline, np.where(differ, baseline + step, baseline)


def sts_models(rng: np.random.Generator, n: int, tuned_noise: float = 1.0) -> tuple[np.ndarray, ...]:
    """Gold 0-5 and two models' cosines on different scales: the baseline's tanh(z / 5), the tuned model's
    0.5 * tanh(z / 5) + 0.3; both see the gold plus a shared difficulty per pair plus their own noise. With equal
    noise the two are equally good (same population Spearman and Pearson) but their raw cosines differ."""
    gold, shared = rng.uniform(0.0, 5.0, size=n), rng.normal(0.0, 0.8, size=n)
    baseline = np.tanh((gold + shared + rng.normal(0.0, 1.0, size=n)) / 5)
    tuned = 0.5 * np.tanh((gold + shared + rng.normal(0.0, tuned_noise, size=n)) / 5) + 0.3
    return baseline, tuned, gold


def test_deterministic_for_a_seed_and_seed_dependent():
    baseline, tuned = per_query_scores(np.random.default_rng(1), 200, 0.01)
    assert compare_means(baseline, tuned, seed=3) == compare_means(baseline, tuned, seed=3)
    assert compare_means(baseline, tuned, seed=3) != compare_means(baseline, tuned, seed=4)
    b, t, g = sts_models(np.random.default_rng(2), 200)
    assert compare_statistic(spearman_rows, b, t, g, seed=5) == compare_statistic(spearman_rows, b, t, g, seed=5)
    assert compare_statistic(spearman_rows, b, t, g, seed=5) != compare_statistic(spearman_rows, b, t, g, seed=6)


def test_identical_models_give_zero_delta_and_p_one():
    baseline = np.random.default_rng(0).uniform(size=100)
    stats = compare_means(baseline, baseline.copy(), n_resamples=999)
    assert (stats.delta, stats.ci_low, stats.ci_high, stats.p_value) == (0.0, 0.0, 0.0, 1.0)
    assert not stats.significant and (stats.n_resamples, stats.method) == (999, "sign-flip")
    assert stats.describe() == "+0.000 [+0.000, +0.000], p = 1: not significant (the 95% interval includes 0)"
    gold = np.random.default_rng(1).uniform(size=100)
    stats = compare_statistic(spearman_rows, baseline, baseline.copy(), gold, n_resamples=200)
    assert (stats.delta, stats.ci_low, stats.ci_high, stats.p_value) == (0.0, 0.0, 0.0, 1.0)
    assert (stats.n_resamples, stats.method) == (200, "bootstrap")


def test_constant_shift_gives_a_point_interval_and_the_floor_p_printed_as_a_bound():
    baseline = np.random.default_rng(0).uniform(size=100)
    stats = compare_means(baseline, baseline + 0.1)
    assert stats.delta == pytest.approx(0.1, abs=1e-12)
    assert (stats.ci_low, stats.ci_high) == pytest.approx((0.1, 0.1), abs=1e-12)
    assert stats.p_value == 1 / (1 + 10_000) and stats.n_resamples == 10_000 and stats.significant
    assert stats.describe() == "+0.100 [+0.100, +0.100], p < 0.0001 (10,000 resamples): significant"


def test_a_p_at_the_floor_is_reported_as_a_bound_with_the_resample_count():
    floor = compare_means(np.zeros(50), np.full(50, 0.2), n_resamples=1_000)
    assert (floor.p_value, floor.n_resamples) == (1 / 1_001, 1_000)
    assert floor.entry()["n_resamples"] == 1_000 and floor.entry()["p_value"] == 1 / 1_001
    assert floor.describe() == "+0.200 [+0.200, +0.200], p < 0.001 (1,000 resamples): significant"
    b, t, g = sts_models(np.random.default_rng(3), 400, tuned_noise=0.3)
    stats = compare_statistic(spearman_rows, b, t, g, n_resamples=500)
    assert (stats.p_value, stats.n_resamples) == (1 / 501, 500)


def test_delta_stats_built_the_old_way_still_works():
    stats = DeltaStats(0.031, 0.018, 0.044, 0.0002, True, 500)  # callers that predate n_resamples and method
    assert (stats.n_resamples, stats.method, stats.confidence) == (0, "", 0.95)
    assert stats.describe() == "+0.031 [+0.018, +0.044], p = 0.0002: significant"


def test_bad_input_says_what_is_wrong():
    with pytest.raises(ValueError, match=r"baseline and tuned must be 1-D .* got shapes \[\(3,\), \(4,\)\]"):
        compare_means(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="must be finite"):
        compare_means(np.array([0.1, np.nan]), np.array([0.2, 0.3]))
    with pytest.raises(ValueError, match="baseline_inputs, tuned_inputs and gold must be 1-D"):
        compare_statistic(spearman_rows, np.zeros(3), np.zeros(3), np.zeros(5))
    with pytest.raises(ValueError, match="confidence must be between 0 and 1"):
        compare_means(np.zeros(3), np.ones(3), confidence=95)
    with pytest.raises(ValueError, match="need at least 2 paired units"):
        compare_means(np.zeros(1), np.ones(1))


def test_row_statistics_match_scipy_including_ties():
    rng = np.random.default_rng(0)
    predicted = rng.integers(0, 5, size=(4, 50)).astype(float)  # many ties, like resampled duplicates
    gold = rng.integers(0, 3, size=50).astype(float)
    expected = [spearmanr(row, gold).statistic for row in predicted]
    np.testing.assert_allclose(spearman_rows(predicted, gold), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(rowwise(lambda p, g: spearmanr(p, g).statistic)(predicted, gold), expected)
    np.testing.assert_allclose(pearson_rows(predicted, gold), [np.corrcoef(r, gold)[0, 1] for r in predicted])


def test_resampled_ranks_equal_ranking_each_resample():
    rng = np.random.default_rng(1)
    for values in (rng.normal(size=40), rng.integers(0, 4, size=40).astype(float)):  # distinct, and heavy ties
        idx = rng.integers(0, 40, size=(25, 40))
        np.testing.assert_array_equal(_resampled_ranks(values, idx), rankdata(values[idx], axis=-1))


def test_spearman_fast_path_gives_the_same_stats_as_recomputing_each_resample():
    b, t, g = sts_models(np.random.default_rng(4), 60)
    g = np.round(g)  # gold with ties, like STS's 0-5 scale
    scalar = rowwise(lambda p, gold: spearmanr(p, gold).statistic)  # not in the fast-path registry
    fast = compare_statistic(spearman_rows, b, t, g, n_resamples=50, seed=1)
    slow = compare_statistic(scalar, b, t, g, n_resamples=50, seed=1)
    assert (slow.delta, slow.ci_low, slow.ci_high) == pytest.approx((fast.delta, fast.ci_low, fast.ci_high), abs=1e-12)
    assert slow.p_value == fast.p_value


def test_bootstrap_interval_and_p_come_from_the_same_order_statistics():
    # 999 resamples at 95%: the interval runs from the 25th smallest to the 25th largest delta, and p < 0.05
    # exactly when fewer than 25 deltas lie on one side of 0.
    inside = _bootstrap_stats(np.arange(-24.0, 975.0), 1.0, 10, 0.95)  # 25 deltas <= 0
    assert (inside.ci_low, inside.ci_high, inside.p_value, inside.significant) == (0.0, 950.0, 51 / 1000, False)
    outside = _bootstrap_stats(np.arange(-23.0, 976.0), 1.0, 10, 0.95)  # 24 deltas <= 0
    assert (outside.ci_low, outside.ci_high, outside.p_value, outside.significant) == (1.0, 951.0, 49 / 1000, True)
    with_nan = _bootstrap_stats(np.r_[np.arange(-23.0, 976.0), np.nan], 1.0, 10, 0.95)
    assert with_nan == outside  # undefined resamples (a constant resample has no correlation) are left out


def test_the_sign_flip_interval_is_every_shift_the_test_does_not_reject():
    baseline, tuned = per_query_scores(np.random.default_rng(5), 120, 0.02)
    stats = compare_means(baseline, tuned, n_resamples=999, seed=2)
    margin = 1e-7 * (stats.ci_high - stats.ci_low)
    for bound, inward in ((stats.ci_low, margin), (stats.ci_high, -margin)):
        kept = compare_means(baseline, tuned - (bound + inward), n_resamples=999, seed=2)  # same sign patterns
        rejected = compare_means(baseline, tuned - (bound - inward), n_resamples=999, seed=2)
        assert kept.p_value >= 0.05 and rejected.p_value < 0.05
        assert not kept.significant and rejected.significant


def test_ci_and_p_agree_on_simulated_real_differences():
    rng, agree, verdicts = np.random.default_rng(8), 0, []
    for sim in range(300):
        gain = (0.0, 0.005, 0.01, 0.02)[sim % 4]
        stats = compare_means(*per_query_scores(rng, 150, gain), n_resamples=999, seed=sim)
        agree += (stats.p_value < 0.05) == (not stats.ci_low <= 0 <= stats.ci_high) == stats.significant
        verdicts.append(stats.significant)
        b, t, g = sts_models(rng, 150, tuned_noise=(1.0, 0.9, 0.8, 0.7)[sim % 4])
        stats = compare_statistic(spearman_rows, b, t, g, n_resamples=199, seed=sim)
        agree += (stats.p_value < 0.05) == (not stats.ci_low <= 0 <= stats.ci_high) == stats.significant
        verdicts.append(stats.significant)
    assert agree / 600 >= 0.98, f"agreement {agree / 600:.3f}"  # by construction it is 1.0
    assert 0.2 < np.mean(verdicts) < 0.8  # both verdicts occur, including borderline cases


def test_a_scale_change_of_one_model_changes_no_p_value_or_interval():
    rng = np.random.default_rng(9)
    b, t, g = sts_models(rng, 150, tuned_noise=0.8)
    rescaled = compare_statistic(spearman_rows, b, t * 0.5 + 0.3, g, n_resamples=199, seed=1)
    assert rescaled == compare_statistic(spearman_rows, b, t, g, n_resamples=199, seed=1)  # bit for bit
    rescaled = compare_statistic(pearson_rows, b, t * 0.5 + 0.3, g, n_resamples=199, seed=1)
    original = compare_statistic(pearson_rows, b, t, g, n_resamples=199, seed=1)
    assert (rescaled.p_value, rescaled.significant) == (original.p_value, original.significant)
    assert (rescaled.ci_low, rescaled.ci_high) == pytest.approx((original.ci_low, original.ci_high), abs=1e-12)
    labels = (g > 2.5).astype(float)
    for name, scalar in PAIR_STATISTICS.items():  # AP, best-threshold accuracy and F1 depend on order only
        statistic = rowwise(scalar)
        rescaled = compare_statistic(statistic, b, t * 0.5 + 0.3, labels, n_resamples=30, seed=1)
        assert rescaled == compare_statistic(statistic, b, t, labels, n_resamples=30, seed=1), name


def test_whole_set_null_false_positive_rate_with_models_on_different_scales():
    rng, rejections = np.random.default_rng(10), 0
    for sim in range(NULL_DATASETS):  # equally good models, tuned cosines at 0.5 * scale + 0.3
        stats = compare_statistic(spearman_rows, *sts_models(rng, 200), n_resamples=199, seed=sim)
        rejections += stats.p_value < 0.05
    assert abs(rejections / NULL_DATASETS - 0.05) <= 0.015, f"false-positive rate {rejections / NULL_DATASETS:.4f}"


@pytest.mark.slow
def test_pearson_null_false_positive_rate_and_power_with_models_on_different_scales():
    rng, rejections = np.random.default_rng(11), 0
    for sim in range(NULL_DATASETS):
        rejections += compare_statistic(pearson_rows, *sts_models(rng, 200), n_resamples=999, seed=sim).significant
    assert abs(rejections / NULL_DATASETS - 0.05) <= 0.015, f"false-positive rate {rejections / NULL_DATASETS:.4f}"
    found = [compare_statistic(spearman_rows, *sts_models(rng, 400, tuned_noise=0.7), seed=s).significant
             for s in range(100)]
    assert np.mean(found) > 0.6  # measured 0.77: a population Spearman gain of 0.058 on 400 pairs


def test_few_discordant_queries_are_not_anticonservative():
    rng, rejections, excluded = np.random.default_rng(12), 0, 0
    for sim in range(NULL_DATASETS):  # ~12% of 160 queries differ, wins and losses equally likely
        stats = compare_means(*few_discordant(rng), n_resamples=999, seed=sim)
        rejections += stats.p_value < 0.05
        excluded += not stats.ci_low <= 0 <= stats.ci_high
    assert rejections == excluded  # the interval says the same as the p-value
    assert 0.02 <= rejections / NULL_DATASETS <= 0.065, f"false-positive rate {rejections / NULL_DATASETS:.4f}"


def test_per_query_null_false_positive_rate_with_continuous_metrics():
    rng = np.random.default_rng(13)
    rejections = sum(compare_means(*per_query_scores(rng, 160, 0.0), n_resamples=999, seed=sim).significant
                     for sim in range(NULL_DATASETS))
    assert abs(rejections / NULL_DATASETS - 0.05) <= 0.015, f"false-positive rate {rejections / NULL_DATASETS:.4f}"


def test_sign_flip_interval_covers_the_true_mean_delta():
    rng, covered = np.random.default_rng(14), {"continuous": 0, "few discordant": 0}
    true_delta = few_discordant_delta(0.2, 0.7)
    for sim in range(300):
        stats = compare_means(*per_query_scores(rng, 150, 0.02), n_resamples=999, seed=sim)
        covered["continuous"] += stats.ci_low <= 0.02 <= stats.ci_high
        stats = compare_means(*few_discordant(rng, p_differ=0.2, win=0.7), n_resamples=999, seed=sim)
        covered["few discordant"] += stats.ci_low <= true_delta <= stats.ci_high
    for case, hits in covered.items():
        assert 0.92 <= hits / 300 <= 0.98, f"{case}: coverage {hits / 300:.3f}"


def few_discordant_delta(p_differ: float, win: float, draws: int = 2_000_000) -> float:
    """The population mean delta of ``few_discordant``, from one very large sample of the same process."""
    baseline, tuned = few_discordant(np.random.default_rng(0), draws, p_differ, win)
    return float((tuned - baseline).mean())


def test_spearman_interval_covers_the_population_delta():
    rng = np.random.default_rng(11)
    b, t, g = sts_models(rng, 400_000, tuned_noise=0.8)  # the "population" delta from a very large sample
    population_delta = spearmanr(t, g).statistic - spearmanr(b, g).statistic
    covered, sims = 0, 200
    for sim in range(sims):
        b, t, g = sts_models(rng, 200, tuned_noise=0.8)
        stats = compare_statistic(spearman_rows, b, t, g, n_resamples=199, seed=sim)
        assert stats.delta == pytest.approx(spearmanr(t, g).statistic - spearmanr(b, g).statistic, abs=1e-12)
        assert stats.delta == pytest.approx(statistic_delta(spearman_rows, b, t, g), abs=1e-15)
        covered += stats.ci_low <= population_delta <= stats.ci_high
    assert 0.90 <= covered / sims <= 0.99, f"coverage {covered / sims:.3f}"


def test_bootstrap_interval_of_any_delta_has_no_p_value():
    rng = np.random.default_rng(15)
    baseline, tuned = per_query_scores(rng, 200, 0.03)
    diff = tuned - baseline
    stats = bootstrap_interval(lambda idx: float(diff[idx].mean()), len(diff), seed=2, n_resamples=300)
    assert math.isnan(stats.p_value) and stats.method == "bootstrap interval" and stats.n_units == 200
    assert stats.delta == pytest.approx(diff.mean()) and stats.significant and 0 < stats.ci_low < stats.ci_high
    assert stats.describe() == f"+{diff.mean():.3f} [+{stats.ci_low:.3f}, +{stats.ci_high:.3f}]: significant"
    tested = bootstrap_test(lambda idx: float(diff[idx].mean()), len(diff), seed=2, n_resamples=300)
    assert (tested.ci_low, tested.ci_high) == (stats.ci_low, stats.ci_high) and tested.p_value == 1 / 301
    vectorised = compare_statistic(lambda p, g: p.mean(axis=-1), baseline, tuned, np.zeros(200), n_resamples=300,
                                   seed=2)  # the same resamples through the vectorised path
    assert (vectorised.ci_low, vectorised.ci_high) == pytest.approx((stats.ci_low, stats.ci_high), abs=1e-12)
    balanced = np.r_[np.ones(25), -np.ones(25)]  # delta 0: wins and losses cancel
    null = bootstrap_interval(lambda idx: float(balanced[idx].mean()), 50, seed=0, n_resamples=200)
    assert null.delta == 0 and null.ci_low < 0 < null.ci_high and not null.significant


def test_an_undefined_statistic_has_no_p_value_and_is_never_significant():
    gold = np.random.default_rng(16).uniform(size=30)
    stats = compare_statistic(spearman_rows, np.ones(30), gold + 0.1, gold, n_resamples=100)
    assert math.isnan(stats.delta) and math.isnan(stats.p_value) and not stats.significant
