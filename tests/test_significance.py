"""Paired bootstrap intervals and randomization tests: known answers, determinism, coverage and null calibration."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from evaluate.significance import (
    DeltaStats,
    compare_means,
    compare_statistic,
    delta_stats,
    paired_bootstrap_ci,
    paired_bootstrap_ci_statistic,
    paired_randomization_test,
    paired_randomization_test_statistic,
    pearson_rows,
    rowwise,
    spearman_rows,
    statistic_delta,
)


def per_query_scores(rng: np.random.Generator, n: int, true_delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-unit metric pairs whose population mean difference is exactly ``true_delta`` (the noise has mean 0)."""
    baseline = rng.beta(2.0, 5.0, size=n)
    return baseline, baseline + true_delta + rng.normal(0.0, 0.08, size=n)


def sts_like(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gold ~ U(0, 1); the tuned model's scores are less noisy than the baseline's."""
    gold = rng.uniform(0.0, 1.0, size=n)
    return gold + rng.normal(0.0, 0.35, size=n), gold + rng.normal(0.0, 0.25, size=n), gold


def test_deterministic_for_a_seed():
    baseline, tuned = per_query_scores(np.random.default_rng(1), 200, 0.01)
    assert paired_bootstrap_ci(baseline, tuned, seed=3) == paired_bootstrap_ci(baseline, tuned, seed=3)
    assert paired_bootstrap_ci(baseline, tuned, seed=3) != paired_bootstrap_ci(baseline, tuned, seed=4)
    assert paired_randomization_test(baseline, tuned, seed=3) == paired_randomization_test(baseline, tuned, seed=3)
    b, t, g = sts_like(np.random.default_rng(2), 200)
    assert compare_statistic(spearman_rows, b, t, g, seed=5) == compare_statistic(spearman_rows, b, t, g, seed=5)


def test_identical_models_give_zero_delta_and_p_one():
    baseline = np.random.default_rng(0).uniform(size=100)
    stats = compare_means(baseline, baseline.copy(), n_permutations=999)
    assert (stats.delta, stats.ci_low, stats.ci_high, stats.p_value) == (0.0, 0.0, 0.0, 1.0)
    assert not stats.significant
    assert stats.describe() == "+0.000 [+0.000, +0.000], p=1: not significant (the 95% interval includes 0)"
    gold = np.random.default_rng(1).uniform(size=100)
    stats = compare_statistic(spearman_rows, baseline, baseline.copy(), gold, n_resamples=200, n_permutations=99)
    assert (stats.delta, stats.ci_low, stats.ci_high, stats.p_value) == (0.0, 0.0, 0.0, 1.0)


def test_constant_shift_gives_a_point_interval_and_the_minimum_p():
    baseline = np.random.default_rng(0).uniform(size=100)
    stats = compare_means(baseline, baseline + 0.1, n_resamples=500, n_permutations=999)
    assert stats.delta == pytest.approx(0.1, abs=1e-12)
    assert (stats.ci_low, stats.ci_high) == pytest.approx((0.1, 0.1), abs=1e-12)
    assert stats.p_value == 1 / (1 + 999)
    assert stats.significant
    assert stats.describe() == "+0.100 [+0.100, +0.100], p=0.001: significant"


def test_describe_names_the_disagreeing_test():
    assert not delta_stats(0.02, (0.001, 0.04), 0.07, 300).significant
    assert delta_stats(0.02, (0.001, 0.04), 0.07, 300).describe().endswith(
        "not significant (p >= 0.05 although the 95% interval excludes 0)")
    assert delta_stats(0.02, (-0.001, 0.04), 0.04, 300).describe().endswith(
        "not significant (the 95% interval includes 0 although p < 0.05)")
    assert DeltaStats(0.031, 0.018, 0.044, 0.0002, True, 500).describe() == (
        "+0.031 [+0.018, +0.044], p=0.0002: significant")


def test_bad_input_says_what_is_wrong():
    with pytest.raises(ValueError, match=r"baseline and tuned must be 1-D .* got shapes \[\(3,\), \(4,\)\]"):
        paired_bootstrap_ci(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="must be finite"):
        paired_randomization_test(np.array([0.1, np.nan]), np.array([0.2, 0.3]))
    with pytest.raises(ValueError, match="baseline_inputs, tuned_inputs and gold must be 1-D"):
        paired_bootstrap_ci_statistic(spearman_rows, np.zeros(3), np.zeros(3), np.zeros(5))
    with pytest.raises(ValueError, match="confidence must be between 0 and 1"):
        paired_bootstrap_ci(np.zeros(3), np.ones(3), confidence=95)


def test_row_statistics_match_scipy_including_ties():
    rng = np.random.default_rng(0)
    predicted = rng.integers(0, 5, size=(4, 50)).astype(float)  # many ties, like resampled duplicates
    gold = rng.integers(0, 3, size=50).astype(float)
    expected = [spearmanr(row, gold).statistic for row in predicted]
    np.testing.assert_allclose(spearman_rows(predicted, gold), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(rowwise(lambda p, g: spearmanr(p, g).statistic)(predicted, gold), expected)
    np.testing.assert_allclose(pearson_rows(predicted, gold), [np.corrcoef(r, gold)[0, 1] for r in predicted])


def test_a_scalar_statistic_via_rowwise_gives_the_same_interval_as_the_vectorised_one():
    b, t, g = sts_like(np.random.default_rng(4), 60)
    scalar = rowwise(lambda p, gold: spearmanr(p, gold).statistic)
    fast = paired_bootstrap_ci_statistic(spearman_rows, b, t, g, n_resamples=50, seed=1)
    assert paired_bootstrap_ci_statistic(scalar, b, t, g, n_resamples=50, seed=1) == pytest.approx(fast, abs=1e-12)


def test_bootstrap_ci_covers_the_population_mean_delta():
    rng, true_delta, sims = np.random.default_rng(2024), 0.02, 200
    covered = 0
    for sim in range(sims):
        baseline, tuned = per_query_scores(rng, 300, true_delta)
        low, high = paired_bootstrap_ci(baseline, tuned, n_resamples=500, seed=sim)
        covered += low <= true_delta <= high
    assert 0.90 <= covered / sims <= 0.99, f"coverage {covered / sims:.3f}"


def test_randomization_p_values_are_calibrated_under_the_null():
    rng, sims = np.random.default_rng(7), 200
    p_values = np.array([paired_randomization_test(*per_query_scores(rng, 300, 0.0), n_permutations=1000, seed=sim)
                         for sim in range(sims)])
    assert 0.01 <= np.mean(p_values < 0.05) <= 0.10, f"share below 0.05: {np.mean(p_values < 0.05):.3f}"
    assert 0.35 <= np.mean(p_values < 0.5) <= 0.65  # roughly uniform in the middle too


def test_spearman_delta_point_and_ci_coverage():
    rng = np.random.default_rng(11)
    b, t, g = sts_like(rng, 1_000_000)  # the "population" delta, from a very large sample of the same process
    population_delta = spearmanr(t, g).statistic - spearmanr(b, g).statistic
    covered, sims = 0, 100
    for sim in range(sims):
        b, t, g = sts_like(rng, 300)
        delta = statistic_delta(spearman_rows, b, t, g)
        assert delta == pytest.approx(spearmanr(t, g).statistic - spearmanr(b, g).statistic, abs=1e-12)
        low, high = paired_bootstrap_ci_statistic(spearman_rows, b, t, g, n_resamples=500, seed=sim)
        covered += low <= population_delta <= high
    assert 0.85 <= covered / sims <= 1.0, f"coverage {covered / sims:.3f}"


def test_statistic_randomization_test_detects_a_real_gain_and_not_a_null():
    rng = np.random.default_rng(3)
    b, t, g = sts_like(rng, 400)
    assert paired_randomization_test_statistic(spearman_rows, b, t, g, n_permutations=499) < 0.01
    gold = rng.uniform(size=400)
    null_b, null_t = gold + rng.normal(0, 0.3, 400), gold + rng.normal(0, 0.3, 400)
    assert paired_randomization_test_statistic(spearman_rows, null_b, null_t, gold, n_permutations=499) > 0.05
