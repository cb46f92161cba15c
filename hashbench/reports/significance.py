"""Paired significance of the best method against the runner-up, over queries.

Both methods were scored on the same queries (same split), so each query gives one pair
(AP of the best, AP of the runner-up) and the question is whether the difference of the
means -- the difference the table shows -- could come from the particular queries drawn.
Two tests are computed, and ``test`` chooses which one decides the dagger:

* ``"bootstrap"`` (default): a seeded two-sided paired bootstrap of the mean difference
  (Efron & Tibshirani 1993, ch. 16): the queries are resampled with replacement ``n_boot``
  times; the p-value is the share of resampled mean differences, re-centred on zero, at
  least as far from zero as the observed one, ``(1 + #) / (1 + n_boot)``. It tests the
  statistic the table reports (a mean), and Smucker, Allan & Carterette (CIKM 2007) found
  the bootstrap, the randomisation test and the t-test to agree on IR metrics, while
  Wilcoxon and sign tests disagreed with them and flagged spurious differences.
* ``"wilcoxon"``: the two-sided Wilcoxon signed-rank test on the per-query differences
  (``scipy.stats.wilcoxon``, zero differences discarded, normal approximation for large
  samples). It tests a shift of the median difference, so it can call a difference
  significant whose mean is within noise (and rarely point the other way than the mean;
  a win is only declared when the mean difference is positive).

Both p-values are written to ``significance.csv``. No correction for multiple comparisons
is made: each test is one pre-declared comparison (the best against the runner-up of one
table column).

Several seeds: the per-query values of a method are averaged over its seeds first (a
query's value is its mean AP across seeds); the test is then over queries. It measures
the uncertainty from the sample of queries, not the training randomness across seeds,
which the tables show separately as the ± (a win within the seed spread deserves caution).
Queries that are NaN (dropped under ``empty="drop"``) in either method are left out of
the pair.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from ..errors import ConfigError

TESTS = ("bootstrap", "wilcoxon")


@dataclass(frozen=True)
class PairedTest:
    """The result of one paired comparison of ``a`` (the best) with ``b`` (the runner-up)."""

    n: int  # pairs used
    mean_diff: float  # mean of a - b
    p_wilcoxon: float
    p_bootstrap: float
    ci_low: float  # 95% bootstrap percentile interval of the mean difference
    ci_high: float
    test: str
    alpha: float

    @property
    def p(self) -> float:
        return self.p_wilcoxon if self.test == "wilcoxon" else self.p_bootstrap

    @property
    def significant(self) -> bool:
        """True when ``a`` beats ``b``: the chosen test rejects at ``alpha`` and a's mean is higher."""
        return bool(np.isfinite(self.p) and self.p < self.alpha and self.mean_diff > 0)


def paired_bootstrap(diff: np.ndarray, *, n_boot: int = 5000, seed: int = 0, chunk: int = 500) -> tuple[float, float, float]:
    """(two-sided p-value, 2.5% and 97.5% percentiles) of the mean of ``diff`` under resampling.

    Vectorised in chunks of ``chunk`` resamples: each chunk draws a (chunk, n) matrix of
    query indices and takes row means.
    """
    diff = np.asarray(diff, dtype=np.float64)
    n = diff.size
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    for start in range(0, n_boot, chunk):
        m = min(chunk, n_boot - start)
        means[start:start + m] = diff[rng.integers(0, n, size=(m, n))].mean(axis=1)
    observed = diff.mean()
    # re-centre on the null (mean difference 0) and count resamples at least as extreme
    extreme = np.count_nonzero(np.abs(means - observed) >= abs(observed) - 1e-15)
    p = (1 + extreme) / (1 + n_boot) if observed != 0 else 1.0
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(p), float(lo), float(hi)


def paired_test(
    a: np.ndarray,
    b: np.ndarray,
    *,
    test: str = "bootstrap",
    alpha: float = 0.05,
    n_boot: int = 5000,
    seed: int = 0,
) -> PairedTest:
    """Compare per-query values ``a`` (the best method) and ``b`` (the runner-up), paired by query.

    Args:
        a, b: per-query values of equal length (AP of each query); NaN pairs are left out.
        test: which test decides :attr:`PairedTest.significant`: "bootstrap" or "wilcoxon".
        alpha: the significance level.
        n_boot, seed: the paired bootstrap's resamples and seed.
    """
    if test not in TESTS:
        raise ConfigError(f"significance test {test!r}: choose one of {', '.join(TESTS)}")
    if not 0 < alpha < 1:
        raise ConfigError(f"significance level alpha={alpha}: must be in (0, 1)")
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ConfigError(f"paired test: the two methods have {a.size} and {b.size} queries; they must be the same queries")
    keep = np.isfinite(a) & np.isfinite(b)
    diff = a[keep] - b[keep]
    n = int(diff.size)
    if n == 0:
        nan = float("nan")
        return PairedTest(0, nan, nan, nan, nan, nan, test, alpha)
    if not np.any(diff != 0):
        p_w = 1.0  # identical per-query values: nothing to detect (scipy refuses all-zero input)
    elif n < 2:
        p_w = float("nan")
    else:
        p_w = float(stats.wilcoxon(diff, zero_method="wilcox", alternative="two-sided").pvalue)
    p_b, lo, hi = paired_bootstrap(diff, n_boot=n_boot, seed=seed)
    return PairedTest(n, float(diff.mean()), p_w, p_b, lo, hi, test, alpha)
