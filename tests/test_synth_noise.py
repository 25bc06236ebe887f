"""The exact discrete Gaussian sampler: integers, the right spread, the tail bound it promises."""

from __future__ import annotations

import math
import statistics

from datashare.synth.noise import (
    add_discrete_gaussian,
    bernoulli_exp,
    discrete_gaussian,
    discrete_laplace,
    tail_threshold,
)


def test_bernoulli_exp_has_the_probability_it_names():
    draws = 6000
    for numerator, denominator in ((1, 2), (3, 1), (0, 5)):
        share = sum(bernoulli_exp(numerator, denominator) for _ in range(draws)) / draws
        assert abs(share - math.exp(-numerator / denominator)) < 0.03


def test_discrete_gaussian_is_integer_centred_with_its_variance():
    draws = [discrete_gaussian(9.0) for _ in range(6000)]
    assert all(isinstance(x, int) for x in draws)
    assert abs(statistics.mean(draws)) < 0.2
    assert 7.9 < statistics.pvariance(draws) < 10.1  # the discrete Gaussian's variance is just under σ² = 9
    assert 0 in draws and any(x < 0 for x in draws) and any(x > 0 for x in draws)


def test_discrete_laplace_is_symmetric_with_its_scale():
    draws = [discrete_laplace(3) for _ in range(6000)]
    assert abs(statistics.mean(draws)) < 0.25
    expected = 2 * math.exp(-1 / 3) / (1 - math.exp(-1 / 3)) ** 2  # variance of P(x) ∝ exp(-|x|/3)
    assert abs(statistics.pvariance(draws) - expected) / expected < 0.15


def test_noise_is_added_to_each_count_and_a_tiny_variance_still_works():
    noisy = add_discrete_gaussian([10, 20, 30], 1e-9)
    assert noisy == [10, 20, 30]
    assert len(set(add_discrete_gaussian([0] * 200, 100.0))) > 10


def test_the_tail_threshold_is_rarely_passed():
    threshold = tail_threshold(4.0, 0.01)
    assert threshold == math.ceil(math.sqrt(2 * 4 * math.log(100)))
    passed = sum(discrete_gaussian(4.0) >= threshold for _ in range(3000))
    assert passed <= 30
