"""The gate's statistics (bench/stats.py) against scipy and textbook examples."""

from __future__ import annotations

import numpy as np
import pytest

from bench import stats


@pytest.mark.parametrize("seed", range(5))
def test_mann_whitney_equals_scipy(seed):
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(1.0, 0.05, 20), 2)  # rounded: ties, as real timings have
    y = np.round(rng.normal(1.02, 0.05, 25), 2)
    expected = scipy_stats.mannwhitneyu(x, y, alternative="greater", method="asymptotic").pvalue
    assert stats.mann_whitney_greater(x, y) == pytest.approx(expected, rel=1e-9)


def test_holm_against_the_textbook_example():
    # Holm (1979) step-down at 0.05 with p sorted 0.005, 0.01, 0.03, 0.04: thresholds
    # 0.05/4, 0.05/3, 0.05/2, 0.05/1 - the first two pass, 0.03 > 0.025 stops.
    assert stats.holm([0.01, 0.04, 0.03, 0.005], alpha=0.05) == [True, False, False, True]


def test_hodges_lehmann_interval_covers_a_known_shift():
    rng = np.random.default_rng(10)
    baseline = np.exp(rng.normal(0, 0.01, 50))
    ratio, low, high = stats.ratio_interval(baseline * 1.05, baseline[rng.permutation(50)])
    assert ratio == pytest.approx(1.05, abs=1e-9) and low <= 1.05 <= high
