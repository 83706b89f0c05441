"""The late-training loss against a naive loop over its literal formula, its closed form and
the engine against the 50-digit reference, and the float16 underflow it exists to show."""

import math
import zlib

import numpy as np
import pytest

import diffbench.ad as ad
from diffbench.families import BUILTIN, make
from diffbench.families.losses import LOSS_SCALE
from diffbench.reference import reference_gradient

TINY = float(np.finfo(np.float16).tiny)
"""float16's smallest normal number, 2⁻¹⁴."""


def loss_inputs(c, d, m, margin):
    """The documented draws: unit-norm centres, then noise; labels i mod c."""
    rng = np.random.default_rng([zlib.crc32(b"late_loss"), m])
    centres = rng.standard_normal((c, d))
    centres = [list(row / math.sqrt(sum(v * v for v in row))) for row in centres]
    noise = rng.standard_normal((m, d))
    labels = [i % c for i in range(m)]
    features = [[centres[labels[i]][j] + 0.3 * noise[i][j] / math.sqrt(d) for j in range(d)]
                for i in range(m)]
    w0 = [margin * v for row in centres for v in row]
    return features, labels, w0


def naive_loss(params, features, labels, c):
    """mean_i (log Σ_k exp z_ik − z_iy), z_ik = Σ_j W[k, j] a_ij, by plain loops."""
    d = len(features[0])
    total = []
    for a, y in zip(features, labels, strict=True):
        z = [math.fsum(params[k * d + j] * a[j] for j in range(d)) for k in range(c)]
        top = max(z)
        total.append(top + math.log(math.fsum(math.exp(v - top) for v in z)) - z[y])
    return math.fsum(total) / len(total)


def relative(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("c,d,m,margin", [(10, 16, 64, 14.0), (3, 2, 5, 1.0), (2, 1, 1, 0.0)])
def test_late_loss_matches_the_naive_formula(c, d, m, margin):
    problem = make("late_loss", m, classes=c, features=d, margin=margin)
    features, labels, w0 = loss_inputs(c, d, m, margin)
    assert problem.n == c * d and np.allclose(problem.x0, w0, rtol=1e-15, atol=0.0)
    expected = naive_loss(w0, features, labels, c)
    assert abs(problem.f(problem.x0) - expected) <= 1e-12 * abs(expected)


@pytest.mark.parametrize("m", [8, 64])
def test_late_loss_gradients_against_the_reference(m):
    """The engine takes P − 1 at a true class as it is written, losing digits of P's
    complement (about eps / 1e-6); the closed form sums the wrong classes' probabilities."""
    problem = make("late_loss", m)
    reference = reference_gradient(problem, use_cache=False).as_float()
    assert relative(problem.gradient(problem.x0, np), reference) <= 1e-14
    engine = ad.grad(lambda x: problem.fn(x, ad))(problem.x0.copy())
    assert relative(engine, reference) <= 1e-12


def test_late_loss_gradient_underflows_in_float16_unless_scaled():
    problem = make("late_loss")
    g = problem.gradient(problem.x0, np)
    assert np.mean(np.abs(g) < TINY) >= 0.5
    assert np.any(g.astype(np.float16) == 0.0)
    for scale in (2.0 ** 13, LOSS_SCALE, 2.0 ** 26):
        scaled = (scale * g).astype(np.float16)
        assert np.all(np.isfinite(scaled)) and np.all(np.abs(scaled) >= TINY), scale
        assert scale * problem.f(problem.x0) < float(np.finfo(np.float16).max)


def test_late_loss_is_registered_with_its_options():
    family = BUILTIN["late_loss"]
    assert family.size_param == "batch"
    assert family.options == {"classes": 10, "features": 16, "batch": 64, "margin": 14.0}
    assert make("late_loss").size == 64 and make("late_loss", 8, classes=3).n == 3 * 16
