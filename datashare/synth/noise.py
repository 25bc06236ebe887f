"""Exact discrete Gaussian noise (Canonne, Kamath and Steinke, "The Discrete Gaussian for Differential
Privacy", NeurIPS 2020, Algorithms 1–3), from the operating system's random source.

Why not ``numpy.random.normal``: floating-point noise leaks through the gaps
in the values a double can take (Mironov 2012), and a seeded generator can be
replayed. Here every draw is an integer, every probability an exact ratio of
integers, and every random bit comes from ``secrets`` (the OS's CSPRNG): the
sampler is exactly the distribution the privacy proof assumes. Counts are
integers, so integer noise is all that is needed.

The Gaussian mechanism with this noise, on a query whose L2 sensitivity is 1,
satisfies ρ-zero-concentrated DP with ρ = 1 / (2σ²) (CKS, Theorem 4).
"""

from __future__ import annotations

import math
import secrets
from fractions import Fraction

# σ² is rounded up to a fraction with a denominator at most this: more noise, never less
_DENOMINATOR = 1_000_000


def _bernoulli(numerator: int, denominator: int) -> bool:
    """True with probability numerator / denominator, exactly."""
    return secrets.randbelow(denominator) < numerator


def bernoulli_exp(numerator: int, denominator: int) -> bool:
    """True with probability exp(−numerator / denominator), exactly (CKS Algorithm 1)."""
    if numerator <= denominator:
        k = 1
        while _bernoulli(numerator, denominator * k):
            k += 1
        return k % 2 == 1
    for _ in range(numerator // denominator):
        if not bernoulli_exp(1, 1):
            return False
    return bernoulli_exp(numerator % denominator, denominator)


def discrete_laplace(t: int) -> int:
    """An integer with P(x) ∝ exp(−|x| / t), exactly (CKS Algorithm 2 with s = 1)."""
    while True:
        u = secrets.randbelow(t)
        if not bernoulli_exp(u, t):
            continue
        v = 0
        while bernoulli_exp(1, 1):
            v += 1
        magnitude = u + t * v
        negative = _bernoulli(1, 2)
        if negative and magnitude == 0:
            continue
        return -magnitude if negative else magnitude


def _variance(sigma2: float) -> Fraction:
    exact = Fraction(sigma2)
    bounded = Fraction(math.ceil(exact * _DENOMINATOR), _DENOMINATOR)
    return max(bounded, Fraction(1, _DENOMINATOR))


def discrete_gaussian(sigma2: float) -> int:
    """An integer with P(x) ∝ exp(−x² / (2σ²)), exactly (CKS Algorithm 3)."""
    variance = _variance(sigma2)
    a, b = variance.numerator, variance.denominator  # σ² = a / b
    t = math.isqrt(a // b) + 1
    while True:
        y = discrete_laplace(t)
        # γ = (|y| − σ²/t)² / (2σ²) = (|y|·b·t − a)² / (2·a·b·t²)
        if bernoulli_exp((abs(y) * b * t - a) ** 2, 2 * a * b * t * t):
            return y


def add_discrete_gaussian(counts: list[int], sigma2: float) -> list[int]:
    """``counts`` with independent discrete Gaussian noise of variance parameter σ² added to each."""
    return [int(c) + discrete_gaussian(sigma2) for c in counts]


def tail_threshold(sigma2: float, delta: float) -> int:
    """T with P(Z ≥ T) ≤ δ for Z discrete Gaussian with parameter σ² (sub-Gaussian: P(Z ≥ T) ≤ exp(−T²/2σ²))."""
    return math.ceil(math.sqrt(2 * float(_variance(sigma2)) * math.log(1 / delta)))
