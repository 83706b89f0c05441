"""A training loss late in training, whose gradient float16 loses to underflow.

Mixed-precision training keeps its gradients in float16, whose smallest normal number is
2⁻¹⁴ ≈ 6.1e-5 (its smallest subnormal 2⁻²⁴ ≈ 6e-8).  Once a classifier fits its batch, the
wrong classes' probabilities are tiny, and so is the gradient of its cross-entropy: most
components fall below float16's normal range and are lost, unless the loss is multiplied by a
scale S first (static or dynamic loss scaling) and the gradient divided by S afterwards in a
wider type.  ``late_loss`` is that loss at such a point: softmax cross-entropy of a linear
classifier, f(W) = mean_i (logsumexp(Z_i) − Z_i[y_i]), Z = A Wᵀ, over the parameters
x = W (c × d, row-major).

At x0 with the defaults (c = 10 classes, d = 16 features, a batch of m = 64, margin 14), 96 %
of the gradient's 160 components are below 2⁻¹⁴ (2 % below 2⁻²⁴; |g_i| from 8e-9 to 8e-5),
and every component of the exact S g is a normal float16 for each S = 2^k, k = 13 … 26, with
S f below float16's largest 65504.  Computed in float16 (x0 rounded to it), S = 2^15 is the
only such power of two that float16 holds and that leaves no component below 2⁻¹⁴: hence
:data:`LOSS_SCALE`.
"""

from __future__ import annotations

import math

import numpy as np

from .base import Family, Problem, seeded_rng
from .workloads import logsumexp, max_last

NOISE = 0.3
"""The spread of an example's features about its class centre (in norm, on average)."""

LOSS_SCALE = 2.0 ** 15
"""A static loss scale under which every component of S g at the default x0 is a normal
float16."""


def loss_data(c: int, d: int, m: int, margin: float) -> dict[str, np.ndarray]:
    """The batch and the point, from ``seeded_rng("late_loss", m)``: class centres μ (c × d
    standard normal draws, each row scaled to unit norm), then noise ε (m × d standard
    normal); labels y_i = i mod c, features a_i = μ_{y_i} + NOISE ε_i / √d, and W0 = margin μ,
    so that a true logit leads a wrong one by about margin (1 − μ_y · μ_k)."""
    rng = seeded_rng("late_loss", m)
    centres = rng.standard_normal((c, d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = np.arange(m) % c
    features = centres[labels] + NOISE * rng.standard_normal((m, d)) / math.sqrt(d)
    return {"features": features, "labels": labels, "w0": margin * centres}


def _late_loss(size: int | None, classes: int, features: int, margin: float) -> Problem:
    """Cross-entropy over x = W (c × d); Wᵀ is gathered from x by an index array, and each
    true logit from the raveled logits, so f needs no transpose."""
    m, c, d = int(size), classes, features
    data = loss_data(c, d, m, margin)
    a, y = data["features"], data["labels"]
    transposed = np.arange(d)[:, None] + d * np.arange(c)[None, :]   # [f, k] = k d + f
    picks = c * np.arange(m) + y
    onehot = np.arange(c)[None, :] == y[:, None]

    def fn(x, ops):
        z = ops.matmul(a, x[transposed])
        true = ops.reshape(z, (m * c,))[picks]
        return ops.mean(logsumexp(z, ops) - true)

    def gradient(x, ops):
        """(1/m) (P − onehot)ᵀ A, P the softmax of the logits; at a true class, P − 1 is
        taken as −Σ of the wrong classes' probabilities, so no digits cancel."""
        z = ops.matmul(a, x[transposed])
        e = ops.exp(z - np.reshape(max_last(z, ops), (m, 1)))
        p = e / np.reshape(ops.sum(e, axis=1), (m, 1))
        wrong = ops.where(onehot, 0.0, p)
        residual = ops.where(onehot, -np.reshape(ops.sum(wrong, axis=1), (m, 1)), wrong)
        return np.ravel(ops.matmul(np.transpose(residual), a)) / m

    return Problem("late_loss", m, fn=fn, gradient=gradient, x0=data["w0"].ravel())


FAMILIES = (
    Family("late_loss", "softmax cross-entropy of a linear classifier (c classes, d features) "
           "on a seeded batch it already fits by a margin: most of its float16 gradient "
           "underflows without loss scaling; size = batch", _late_loss, "batch", (8, 64),
           options={"classes": 10, "features": 16, "batch": 64, "margin": 14.0},
           limits={"classes": (2, 100_000), "features": (1, 100_000),
                   "batch": (1, 10_000_000), "margin": (0.0, math.inf)}),
)
