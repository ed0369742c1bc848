"""Is the tuned model really better? One interval and one p-value per delta, from one construction, so they agree.

Both models are scored on the same units (queries, pairs, texts), so everything is paired. Two constructions:

* **Means over units** (per-query nDCG, recall, per-text accuracy): a paired **sign-flip test**, inverted into its
  interval. Under "no difference" each unit's two values are exchangeable, so the sign of each difference is a coin
  flip; p is the share of random sign patterns whose mean is at least as far from 0 as the observed one. The same
  patterns test every shift d (is mean(diff - d) unusual?), and the interval is every d they do not reject. The test
  is exact whatever the number of units that differ (a percentile bootstrap over 160 queries of which a handful
  differ is anticonservative: its resamples miss the rare losses).
* **Whole-set statistics** (Spearman, Pearson, AP, best-threshold accuracy or F1 over pairs; metrics of resampled
  texts): a paired **bootstrap**: resample units with replacement, the same units for both models, recompute each
  model's statistic on its own scores, and take the delta. The interval is the central share of these deltas and p is
  the share on the other side of 0, doubled: the smallest alpha whose interval would exclude 0. Each model's
  statistic only ever sees that model's scores, so a model whose cosines sit on another scale (x 0.5 + 0.3) gets the
  same p and interval; swapping raw cosines between models (the old test) mixed scales and made its null wrong.

Either way ``significant`` is "the interval excludes 0", which is exactly "p < alpha" (shown at ``_sign_flip`` and
``_bootstrap_stats``). p is never below 1 / (1 + resamples); ``DeltaStats.n_resamples`` says how many, so a report
can print that floor as "< 0.0001 (10,000 resamples)". Pure maths, no I/O; deterministic for a ``seed``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np
from scipy.stats import rankdata

from evaluate.report.wording import not_significant_why, p_clause

RowStatistic = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(predicted (..., n), gold broadcastable to it) -> (...): the statistic along the last axis (``spearman_rows``)."""

_STAT_NAMES = "baseline_inputs, tuned_inputs and gold"
_CHUNK_ELEMENTS = 1_000_000  # ~8 MB per float64 (k, n) block: resamples are drawn in blocks, not all at once
_ROUNDING = 1e-9  # relative slack for floating-point rounding: a tie stays a tie, an integer stays an integer


@dataclass(frozen=True)
class DeltaStats:
    """delta = tuned - baseline with its interval and p-value from one construction (``method``).

    ``significant`` means the interval excludes 0, which the constructions make the same as p < 1 - confidence.
    ``n_resamples`` sign patterns or bootstrap resamples were used: p is never below 1 / (1 + n_resamples).
    """

    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    significant: bool
    n_units: int
    confidence: float = 0.95
    n_resamples: int = 0
    method: str = ""

    def entry(self) -> dict:
        """The interval and p as report.json holds them: an undefined p is None."""
        p_value = None if math.isnan(self.p_value) else self.p_value
        return {"delta": self.delta, "ci_low": self.ci_low, "ci_high": self.ci_high, "p_value": p_value,
                "significant": self.significant, "n_units": self.n_units, "n_resamples": self.n_resamples}

    def describe(self) -> str:
        """E.g. "+0.031 [+0.018, +0.044], p < 0.0001 (10,000 resamples): significant", in the reports' words."""
        entry = self.entry()
        head = ", ".join(filter(None, [f"{self.delta:+.3f} [{self.ci_low:+.3f}, {self.ci_high:+.3f}]",
                                       p_clause(entry)]))
        return f"{head}: significant" if self.significant else f"{head}: not significant ({not_significant_why(entry)})"


def _alpha(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (e.g. 0.95); got {confidence}.")
    return round(1 - confidence, 12)  # 1 - 0.95 is 0.050000000000000044 in floating point: use 0.05


def delta_stats(delta: float, interval: tuple[float, float], p_value: float, n_units: int,
                confidence: float = 0.95) -> DeltaStats:
    """Bundle results from elsewhere; significant = p < 1 - confidence and the interval excludes 0 (never when any
    of them is undefined: a NaN bound excludes nothing)."""
    low, high = interval
    defined = bool(np.isfinite([delta, low, high, p_value]).all())
    significant = defined and p_value < _alpha(confidence) and not (low <= 0 <= high)
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


def _flip_ranges(diff: np.ndarray, n_resamples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """For each random sign pattern s, the shifts d it "hits": |mean(s * (diff - d))| >= |mean(diff - d)|.

    With a = mean(s * diff) and c = mean(s) that is |a - c d| >= |m - d| (m = mean(diff)), true on the interval
    between d = (m - a) / (1 - c) and d = (m + a) / (1 + c), which always holds m. Both ends are (n_resamples,).
    """
    n, m, rng, ends = len(diff), diff.mean(), np.random.default_rng(seed), []
    r = 1 - _ROUNDING  # |a - c d| >= r |m - d|: rounding of the sums never turns a tie into a miss
    for k in _blocks(n_resamples, n):
        bytes_ = rng.integers(0, 256, size=(k, (n + 7) // 8), dtype=np.uint8)  # 8 fair coins per byte: fast
        plus = np.unpackbits(bytes_, axis=1, count=n)  # (k, n): 1 keeps a unit's sign, 0 flips it
        a, c = (2.0 * (plus @ diff) - diff.sum()) / n, (2.0 * plus.sum(axis=1) - n) / n  # (k,), (k,)
        with np.errstate(divide="ignore", invalid="ignore"):
            d1, d2 = (r * m - a) / (r - c), (a + r * m) / (r + c)
        always = np.abs(c) >= r  # all signs equal: |mean| is the observed one for every d
        ends.append((np.where(always, -np.inf, np.minimum(d1, d2)), np.where(always, np.inf, np.maximum(d1, d2))))
    return np.concatenate([e[0] for e in ends]), np.concatenate([e[1] for e in ends])


def _sign_flip(diff: np.ndarray, n_resamples: int, confidence: float, seed: int) -> tuple[float, float, float]:
    """(p, low, high): p(d) = (1 + #patterns hitting d) / (1 + n) and the interval {d : p(d) >= alpha}.

    Below m a pattern hits d exactly when its low end is <= d (its high end is >= m), so the interval starts at the
    need-th smallest low end, and ends at the need-th largest high end. 0 lies on one side of m, so 0 is inside
    exactly when p(0) >= alpha. (If m = 0 every range holds 0: p = 1.)
    """
    low_ends, high_ends = _flip_ranges(diff, n_resamples, seed)
    p = (1 + np.count_nonzero((low_ends <= 0) & (0 <= high_ends))) / (1 + n_resamples)
    need = math.ceil(_alpha(confidence) * (1 + n_resamples) - 1 - _ROUNDING)  # hits that make p(d) >= alpha
    if need < 1:
        return float(p), -math.inf, math.inf  # too few patterns to ever reach alpha
    return float(p), float(np.sort(low_ends)[need - 1]), float(np.sort(high_ends)[n_resamples - need])


def compare_means(baseline: np.ndarray, tuned: np.ndarray, *, n_resamples: int = 10_000, confidence: float = 0.95,
                  seed: int = 0) -> DeltaStats:
    """mean(tuned) - mean(baseline) over paired units with the sign-flip p-value and its inverted interval.

    Args:
        baseline: (n_units,) the untuned model's per-unit metric, e.g. per-query nDCG@10.
        tuned: (n_units,) the tuned model's metric on the same units, in the same order.
        n_resamples: Random sign patterns (10,000 put the floor of p at 1 / 10,001).
        confidence: Interval coverage, e.g. 0.95; significant means p < 1 - confidence.
        seed: Seed for ``numpy.random.default_rng``.
    """
    baseline, tuned = _check_paired(baseline, tuned)
    diff = tuned - baseline  # (n_units,)
    p, low, high = _sign_flip(diff, n_resamples, confidence, seed)
    return DeltaStats(float(diff.mean()), low, high, p, not low <= 0 <= high, len(diff), confidence, n_resamples,
                      "sign-flip")


def _bootstrap_deltas(delta_rows: Callable[[np.ndarray], np.ndarray], n_units: int, n_resamples: int,
                      seed: int) -> np.ndarray:
    """(n_resamples,) deltas of ``delta_rows(idx)`` on unit indices ``idx`` (k, n_units) drawn with replacement."""
    rng = np.random.default_rng(seed)
    return np.concatenate([delta_rows(rng.integers(0, n_units, size=(k, n_units)))
                           for k in _blocks(n_resamples, n_units)])


def _p_value(deltas: np.ndarray, observed: float) -> float:
    """Bootstrap p: (1 + 2 * min(#{delta* <= 0}, #{delta* >= 0})) / (1 + n), at most 1; NaN for an undefined delta
    (not a tiny p). Resamples where the statistic is undefined (e.g. a constant resample) are left out."""
    deltas = deltas[np.isfinite(deltas)]
    if not np.isfinite(observed) or deltas.size == 0:
        return float("nan")
    below, above = np.count_nonzero(deltas <= 0), np.count_nonzero(deltas >= 0)
    return float(min(1.0, (1 + 2 * min(below, above)) / (1 + deltas.size)))


def _bootstrap_stats(deltas: np.ndarray, delta: float, n_units: int, confidence: float) -> DeltaStats:
    """Interval [need-th smallest, need-th largest] of the finite deltas, with need chosen so that 0 is outside
    exactly when fewer than ``need`` deltas lie on one side of 0, i.e. exactly when ``_p_value`` < alpha."""
    finite = np.sort(deltas[np.isfinite(deltas)])
    need = math.ceil((_alpha(confidence) * (1 + finite.size) - 1) / 2 - _ROUNDING)
    low, high = (finite[need - 1], finite[finite.size - need]) if 1 <= need <= finite.size else (math.nan, math.nan)
    if finite.size and need < 1:
        low, high = -math.inf, math.inf  # too few resamples to ever reach alpha
    significant = bool(np.isfinite([delta, low, high]).all() and not low <= 0 <= high)
    return DeltaStats(float(delta), float(low), float(high), _p_value(finite, delta), significant, n_units,
                      confidence, int(finite.size), "bootstrap")


def bootstrap_test(delta_of: Callable[[np.ndarray], float], n_units: int, seed: int, n_resamples: int = 1000,
                   confidence: float = 0.95) -> DeltaStats:
    """Paired bootstrap interval of any delta, and the p-value that inverts it (as ``compare_statistic``).

    Args:
        delta_of: Unit indices (n_units,) -> tuned minus baseline metric on those units (duplicates included),
            e.g. ``lambda idx: f1(tuned.gold[idx], tuned.predicted[idx]) - f1(base.gold[idx], base.predicted[idx])``.
        n_units: Units (texts) to resample; ``delta_of(np.arange(n_units))`` is the reported delta.
        seed, n_resamples, confidence: As for ``compare_statistic``.
    """
    deltas = _bootstrap_deltas(lambda idx: np.array([delta_of(row) for row in idx], dtype=np.float64), n_units,
                               n_resamples, seed)  # one delta_of call per resample: a Python loop
    return _bootstrap_stats(deltas, float(delta_of(np.arange(n_units))), n_units, confidence)


def bootstrap_interval(delta_of: Callable[[np.ndarray], float], n_units: int, seed: int, n_resamples: int = 1000,
                       confidence: float = 0.95) -> DeltaStats:
    """``bootstrap_test`` without the p-value (NaN): significant = the interval excludes 0 (e.g. V-measure)."""
    stats = bootstrap_test(delta_of, n_units, seed, n_resamples, confidence)
    return replace(stats, p_value=math.nan, method="bootstrap interval")


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


def _resampled_ranks(values: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``rankdata(values[idx], axis=-1)`` for values (n,) and resamples idx (k, n), from one sort of ``values``.

    A unit's average rank in a resample is (resampled items in lower tie groups) + (items in its group + 1) / 2,
    so counting items per tie group replaces sorting every resample: O(k n) instead of O(k n log n).
    """
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    groups = np.empty(len(values), dtype=np.int64)  # tie group of each unit, in ascending order of value
    groups[order] = np.concatenate([[0], np.cumsum(ordered[1:] != ordered[:-1])])
    n_groups, k = int(groups.max()) + 1, idx.shape[0]
    picked = groups[idx]  # (k, n)
    counts = np.bincount((picked + n_groups * np.arange(k)[:, None]).ravel(), minlength=k * n_groups)
    counts = counts.reshape(k, n_groups)  # (k, n_groups) resampled items per tie group
    group_rank = np.cumsum(counts, axis=1) - (counts - 1) / 2  # items below the group + (items in it + 1) / 2
    return np.take_along_axis(group_rank, picked, axis=1)  # (k, n)


def _spearman_resampled(predicted: np.ndarray, gold: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``spearman_rows(predicted[:, idx], gold[idx])`` for predicted (2, n) without sorting a resample: (2, k)."""
    ranks = np.stack([_resampled_ranks(row, idx) for row in predicted])  # (2, k, n)
    return pearson_rows(ranks, _resampled_ranks(gold, idx))


# Statistics with a faster way to score resamples than indexing and recomputing; results are identical.
_RESAMPLED: dict[Callable, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    spearman_rows: _spearman_resampled}


def statistic_delta(statistic: RowStatistic, baseline_inputs: np.ndarray, tuned_inputs: np.ndarray,
                    gold: np.ndarray) -> float:
    """statistic(tuned scores, gold) - statistic(baseline scores, gold) on all pairs."""
    both = np.stack([baseline_inputs, tuned_inputs])  # (2, n_pairs)
    values = statistic(both, np.asarray(gold, dtype=np.float64))
    return float(values[1] - values[0])


def compare_statistic(statistic: RowStatistic, baseline_inputs: np.ndarray, tuned_inputs: np.ndarray,
                      gold: np.ndarray, *, n_resamples: int = 1000, confidence: float = 0.95,
                      seed: int = 0) -> DeltaStats:
    """Delta of a whole-set statistic (e.g. Spearman) with its paired bootstrap interval and the p that inverts it.

    Args:
        statistic: Row statistic, e.g. ``spearman_rows`` for STS, or ``rowwise(scalar_fn)``.
        baseline_inputs: (n_pairs,) the untuned model's predicted score per pair (e.g. cosine similarity).
        tuned_inputs: (n_pairs,) the tuned model's predicted score for the same pairs, in the same order.
        gold: (n_pairs,) the gold label per pair (similarity score or 0/1).
        n_resamples, confidence, seed: As for ``compare_means`` (1,000 resamples put the floor of p at 1 / 1,001).
    """
    baseline, tuned, gold = _check_paired(baseline_inputs, tuned_inputs, gold, names=_STAT_NAMES)

    both = np.stack([baseline, tuned])  # (2, n): each model's statistic only ever sees its own scores
    resampled = _RESAMPLED.get(statistic, lambda predicted, labels, idx: statistic(predicted[:, idx], labels[idx]))

    def delta_rows(idx: np.ndarray) -> np.ndarray:  # idx (k, n): the same pairs for both models and for gold
        values = resampled(both, gold, idx)  # (2, k)
        return values[1] - values[0]

    deltas = _bootstrap_deltas(delta_rows, len(gold), n_resamples, seed)
    return _bootstrap_stats(deltas, statistic_delta(statistic, baseline, tuned, gold), len(gold), confidence)
