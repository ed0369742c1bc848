"""Is the tuned model really better? Paired bootstrap intervals and randomization tests, baseline vs tuned.

Both models are scored on the same units, so everything is paired: a resample draws the same unit indices for both,
a permutation swaps a unit's two values. Metrics that are a mean over units (per-query nDCG) pass per-unit values;
whole-set metrics (Spearman over pairs, AP) pass each model's per-pair scores, the gold labels and a row statistic.
Pure maths, no I/O; every function is deterministic for its ``seed``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

RowStatistic = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(predicted (..., n), gold broadcastable to it) -> (...): the statistic along the last axis (``spearman_rows``)."""

_STAT_NAMES = "baseline_inputs, tuned_inputs and gold"
_CHUNK_ELEMENTS = 1_000_000  # ~8 MB per float64 (k, n) block: resamples are drawn in blocks, not all at once


@dataclass(frozen=True)
class DeltaStats:
    """delta = tuned - baseline with its bootstrap interval and randomization p-value.

    ``significant`` is True only when p < alpha (alpha = 1 - confidence) AND the interval excludes 0; the two
    agree in the normal case, and requiring both keeps a borderline disagreement from being called a gain.
    """

    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    significant: bool
    n_units: int
    confidence: float = 0.95

    def describe(self) -> str:
        """E.g. "+0.031 [+0.018, +0.044], p=0.0002: significant"."""
        head = f"{self.delta:+.3f} [{self.ci_low:+.3f}, {self.ci_high:+.3f}], p={self.p_value:.2g}"
        if self.significant:
            return f"{head}: significant"
        level, alpha = f"{self.confidence:.0%}", 1 - self.confidence
        if not self.ci_low <= 0 <= self.ci_high:
            why = f"p >= {alpha:.2g} although the {level} interval excludes 0"
        elif self.p_value < alpha:
            why = f"the {level} interval includes 0 although p < {alpha:.2g}"
        else:
            why = f"the {level} interval includes 0"
        return f"{head}: not significant ({why})"


def delta_stats(delta: float, interval: tuple[float, float], p_value: float, n_units: int,
                confidence: float = 0.95) -> DeltaStats:
    """Bundle the results; significant = p < 1 - confidence and the interval excludes 0 (never when any of them
    is undefined: a NaN bound excludes nothing)."""
    low, high = interval
    defined = bool(np.isfinite([delta, low, high, p_value]).all())
    significant = defined and p_value < 1 - confidence and not (low <= 0 <= high)
    return DeltaStats(float(delta), float(low), float(high), float(p_value), bool(significant), n_units, confidence)


def _check_paired(*arrays: np.ndarray, names: str = "baseline and tuned") -> tuple[np.ndarray, ...]:
    """All as 1-D float arrays of one length (>= 2), all finite, or a ValueError saying what is wrong."""
    arrays = tuple(np.asarray(a, dtype=np.float64) for a in arrays)
    shapes = [a.shape for a in arrays]
    if arrays[0].ndim != 1 or len(set(shapes)) > 1:
        raise ValueError(f"{names} must be 1-D with one value per unit, in the same order; got shapes {shapes}.")
    if len(arrays[0]) < 2:
        raise ValueError(f"need at least 2 paired units to measure uncertainty; got {len(arrays[0])}.")
    if not all(np.isfinite(a).all() for a in arrays):
        raise ValueError(f"{names} must be finite (no NaN or inf); drop or fix those units first.")
    return arrays


def _blocks(total: int, n_units: int) -> Iterator[int]:
    """Sizes of consecutive blocks of resamples so that one (block, n_units) array stays ~_CHUNK_ELEMENTS."""
    step = max(1, _CHUNK_ELEMENTS // n_units)
    for start in range(0, total, step):
        yield min(step, total - start)


def _percentile_interval(deltas: np.ndarray, confidence: float) -> tuple[float, float]:
    """The central ``confidence`` share of the bootstrap deltas (percentile method)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (e.g. 0.95); got {confidence}.")
    tail = (1 - confidence) / 2 * 100
    deltas = deltas[np.isfinite(deltas)]  # a resample of constant scores has no correlation: leave it out
    if deltas.size == 0:
        return float("nan"), float("nan")
    low, high = np.percentile(deltas, [tail, 100 - tail])
    return float(low), float(high)


def _p_value(permuted: np.ndarray, observed: float) -> float:
    """Two-sided (1 + #{|perm| >= |observed|}) / (1 + n); the relative tolerance absorbs summation-order rounding."""
    if not np.isfinite(observed):  # an undefined delta has no p-value (not a tiny one)
        return float("nan")
    permuted = permuted[np.isfinite(permuted)]
    hits = np.count_nonzero(np.abs(permuted) >= abs(observed) * (1 - 1e-9))
    return float((1 + hits) / (1 + len(permuted)))


def paired_bootstrap_ci(baseline: np.ndarray, tuned: np.ndarray, n_resamples: int = 2000, confidence: float = 0.95,
                        seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval for mean(tuned) - mean(baseline), resampling units with replacement.

    Args:
        baseline: (n_units,) the untuned model's per-unit metric, e.g. per-query nDCG@10.
        tuned: (n_units,) the tuned model's metric on the same units, in the same order.
        n_resamples: Bootstrap resamples.
        confidence: Interval coverage, e.g. 0.95.
        seed: Seed for ``numpy.random.default_rng``.

    Returns:
        (low, high) of the interval for the delta of means.
    """
    baseline, tuned = _check_paired(baseline, tuned)
    diff, rng = tuned - baseline, np.random.default_rng(seed)  # the same indices for both models = resample diffs
    blocks = _blocks(n_resamples, len(diff))
    means = [diff[rng.integers(0, len(diff), size=(k, len(diff)))].mean(axis=1) for k in blocks]  # (k,) each
    return _percentile_interval(np.concatenate(means), confidence)


def paired_randomization_test(baseline: np.ndarray, tuned: np.ndarray, n_permutations: int = 10000,
                              seed: int = 0) -> float:
    """Two-sided p-value for mean(tuned) - mean(baseline) by randomly swapping each unit's two values.

    Swapping a unit's baseline and tuned values flips the sign of its difference; under "no difference" every
    sign pattern is equally likely. Arguments are as for ``paired_bootstrap_ci``; n_permutations sign patterns.

    Returns:
        (1 + #{|permuted delta| >= |observed delta|}) / (1 + n_permutations), so at least 1 / (1 + n_permutations).
    """
    baseline, tuned = _check_paired(baseline, tuned)
    diff, rng = tuned - baseline, np.random.default_rng(seed)
    permuted = [(rng.choice((-1.0, 1.0), size=(k, len(diff))) @ diff) / len(diff)  # (k,) permuted mean deltas
                for k in _blocks(n_permutations, len(diff))]
    return _p_value(np.concatenate(permuted), float(np.ones(len(diff)) @ diff) / len(diff))


def pearson_rows(predicted: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """Pearson correlation along the last axis of ``predicted`` (..., n) and ``gold`` (broadcastable): (...)."""
    x = predicted - predicted.mean(axis=-1, keepdims=True)
    y = gold - gold.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):  # a constant row has no correlation: NaN, as scipy
        return (x * y).sum(axis=-1) / np.sqrt((x * x).sum(axis=-1) * (y * y).sum(axis=-1))


def spearman_rows(predicted: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """Spearman correlation per row: Pearson of average ranks (ties, e.g. resampled duplicates, share a rank)."""
    return pearson_rows(rankdata(predicted, axis=-1), rankdata(gold, axis=-1))


def rowwise(statistic: Callable[[np.ndarray, np.ndarray], float]) -> RowStatistic:
    """Adapt a scalar ``statistic(predicted, gold)`` (e.g. sklearn's AP with swapped arguments) by a row loop."""

    def apply(predicted: np.ndarray, gold: np.ndarray) -> np.ndarray:
        rows = predicted.reshape(-1, predicted.shape[-1])  # (rows, n)
        golds = np.broadcast_to(gold, predicted.shape).reshape(rows.shape)
        return np.array([statistic(p, g) for p, g in zip(rows, golds)], dtype=np.float64).reshape(predicted.shape[:-1])

    return apply


def statistic_delta(statistic: RowStatistic, baseline_inputs: np.ndarray, tuned_inputs: np.ndarray,
                    gold: np.ndarray) -> float:
    """statistic(tuned scores, gold) - statistic(baseline scores, gold) on all pairs."""
    both = np.stack([baseline_inputs, tuned_inputs])  # (2, n_pairs)
    values = statistic(both, np.asarray(gold, dtype=np.float64))
    return float(values[1] - values[0])


def paired_bootstrap_ci_statistic(statistic: RowStatistic, baseline_inputs: np.ndarray, tuned_inputs: np.ndarray,
                                  gold: np.ndarray, n_resamples: int = 1000, confidence: float = 0.95,
                                  seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval for statistic(tuned) - statistic(baseline), recomputed on resampled pairs.

    Args:
        statistic: Row statistic, e.g. ``spearman_rows`` for STS, or ``rowwise(scalar_fn)``.
        baseline_inputs: (n_pairs,) the untuned model's predicted score per pair (e.g. cosine similarity).
        tuned_inputs: (n_pairs,) the tuned model's predicted score for the same pairs, in the same order.
        gold: (n_pairs,) the gold label per pair (similarity score or 0/1).
        n_resamples, confidence, seed: As for ``paired_bootstrap_ci`` (1000 resamples suit a 95% interval).

    Returns:
        (low, high) of the interval for the delta of the statistic.
    """
    baseline, tuned, gold = _check_paired(baseline_inputs, tuned_inputs, gold, names=_STAT_NAMES)
    rng, deltas = np.random.default_rng(seed), []
    for k in _blocks(n_resamples, len(gold)):
        idx = rng.integers(0, len(gold), size=(k, len(gold)))  # the same pair indices for both models and gold
        values = statistic(np.stack([baseline[idx], tuned[idx]]), gold[idx])  # (2, k): gold is ranked once
        deltas.append(values[1] - values[0])
    return _percentile_interval(np.concatenate(deltas), confidence)


def paired_randomization_test_statistic(statistic: RowStatistic, baseline_inputs: np.ndarray,
                                        tuned_inputs: np.ndarray, gold: np.ndarray, n_permutations: int = 1000,
                                        seed: int = 0) -> float:
    """Two-sided p-value for statistic(tuned) - statistic(baseline) by swapping pairs' predicted scores.

    Each permutation swaps every pair's baseline and tuned score with probability 1/2 and recomputes the delta.
    Arguments are as for ``paired_bootstrap_ci_statistic``; n_permutations swap patterns.

    Returns:
        (1 + #{|permuted delta| >= |observed delta|}) / (1 + n_permutations).
    """
    baseline, tuned, gold = _check_paired(baseline_inputs, tuned_inputs, gold, names=_STAT_NAMES)
    rng, permuted = np.random.default_rng(seed), []
    for k in _blocks(n_permutations, len(gold)):
        swap = rng.random((k, len(gold))) < 0.5
        values = statistic(np.stack([np.where(swap, tuned, baseline), np.where(swap, baseline, tuned)]), gold)
        permuted.append(values[1] - values[0])  # (k,) deltas with swapped pairs
    return _p_value(np.concatenate(permuted), statistic_delta(statistic, baseline, tuned, gold))


def compare_means(baseline: np.ndarray, tuned: np.ndarray, n_resamples: int = 2000, n_permutations: int = 10000,
                  confidence: float = 0.95, seed: int = 0) -> DeltaStats:
    """Delta of per-unit means with its bootstrap interval and randomization p-value (see the functions above)."""
    baseline, tuned = _check_paired(baseline, tuned)
    interval = paired_bootstrap_ci(baseline, tuned, n_resamples, confidence, seed)
    p_value = paired_randomization_test(baseline, tuned, n_permutations, seed)
    return delta_stats(float(tuned.mean() - baseline.mean()), interval, p_value, len(baseline), confidence)


def compare_statistic(statistic: RowStatistic, baseline_inputs: np.ndarray, tuned_inputs: np.ndarray,
                      gold: np.ndarray, n_resamples: int = 1000, n_permutations: int = 1000, confidence: float = 0.95,
                      seed: int = 0) -> DeltaStats:
    """Delta of a whole-set statistic (e.g. Spearman) with its bootstrap interval and randomization p-value."""
    interval = paired_bootstrap_ci_statistic(statistic, baseline_inputs, tuned_inputs, gold, n_resamples,
                                             confidence, seed)
    p_value = paired_randomization_test_statistic(statistic, baseline_inputs, tuned_inputs, gold, n_permutations, seed)
    delta = statistic_delta(statistic, *_check_paired(baseline_inputs, tuned_inputs, gold, names=_STAT_NAMES))
    return delta_stats(delta, interval, p_value, len(gold), confidence)
