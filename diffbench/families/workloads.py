"""Workloads of the AD benchmarks (ADBench, gradbench), each written once over ``ops``.

Their inputs are generated as gradbench generates them, from fixed seeds, so a size and its
options name one problem on every machine.  The log-sum-exps are the stable form
m + log Σ exp(v − m) with m the maximum, taken by :func:`max_last` from the contract's
``maximum``: m's own derivative cancels (d/dm of the whole is 1 − Σ softmax = 0), so any
backend's convention at ties of the maximum leaves the gradient as it is.
"""

from __future__ import annotations

import math

import numpy as np

from .base import Family, Problem

SEED = 31337
"""gradbench's seed, for every workload."""


def max_last(v, ops):
    """The maximum over the last axis: the elementwise maximum of two overlapping halves, until
    one column is left (a column compared with itself never happens, and overlap is harmless:
    the maximum is idempotent)."""
    width = v.shape[-1]
    while width > 1:
        half = (width + 1) // 2
        v = ops.maximum(v[..., :half], v[..., width - half:])
        width = half
    return v[..., 0]


def logsumexp(v, ops):
    """log Σ exp(v) over the last axis, stably: m + log Σ exp(v − m), m = max."""
    m = max_last(v, ops)
    shifted = v - ops.reshape(m, tuple(np.shape(m)) + (1,))
    return m + ops.log(ops.sum(ops.exp(shifted), axis=-1))


# ---- lse -----------------------------------------------------------------------------------

def lse(x, ops):
    return logsumexp(x, ops)


def _lse_gradient(x, ops):
    e = ops.exp(x - max_last(x, ops))
    return e / ops.sum(e)


def _lse(size: int | None) -> Problem:
    n = int(size)
    x0 = np.random.RandomState(SEED).rand(n)
    return Problem("lse", n, fn=lse, gradient=_lse_gradient, x0=x0)


# ---- gmm -----------------------------------------------------------------------------------

def gmm_data(d: int, k: int, n: int) -> dict[str, np.ndarray]:
    """gradbench's GMM inputs: ``default_rng(31337)``, then x (n × d normal draws), means
    (k × d uniform), q (k × d normal), l (k × d(d−1)/2 normal), α (k normal), in that order."""
    rng = np.random.default_rng(SEED)
    x = np.array([rng.normal(size=d) for _ in range(n)]).reshape(n, d)
    means = np.array([rng.uniform(size=d) for _ in range(k)]).reshape(k, d)
    q = np.array([rng.normal(size=d) for _ in range(k)]).reshape(k, d)
    l = np.array([rng.normal(size=d * (d - 1) // 2) for _ in range(k)]).reshape(k, -1)  # noqa: E741
    alpha = rng.normal(size=k)
    return {"x": x, "means": means, "q": q, "l": l, "alpha": alpha}


def lower_positions(d: int) -> list[tuple[int, int]]:
    """The (row, column) of each strictly-lower entry of a d × d matrix in the order l fills
    them: column by column, top to bottom."""
    return [(i, j) for j in range(d) for i in range(j + 1, d)]


def multigammaln(a: float, p: int) -> float:
    """log Γ_p(a) = p(p−1)/4 log π + Σ_{j=1..p} log Γ(a + (1 − j)/2)."""
    return p * (p - 1) / 4 * math.log(math.pi) + sum(math.lgamma(a + (1 - j) / 2)
                                                   for j in range(1, p + 1))


def _gmm(size: int | None, d: int, n: int, gamma: float, m: int) -> Problem:
    """The GMM objective over x = [α (k), means (k × d), icf (k × (d + d(d−1)/2))].

    Q_k's columns are laid out side by side in one d × kd matrix W, W[j, k d + i] = Q_k[i, j]
    (gathered from x by index arrays, the diagonal through exp), so that every Q_k (x_n − μ_k)
    is one matrix product, data @ W, less W's column sums weighted by μ_k.
    """
    k = int(size)
    data = gmm_data(d, k, n)
    width = d + d * (d - 1) // 2
    means0, icf0 = k, k + k * d
    diag_index = np.zeros((d, k * d), dtype=np.intp)
    diag_mask = np.zeros((d, k * d), dtype=bool)
    lower_index = np.zeros((d, k * d), dtype=np.intp)
    lower_mask = np.zeros((d, k * d), dtype=bool)
    mean_index = np.zeros((d, k * d), dtype=np.intp)
    for c in range(k):
        for i in range(d):
            column = c * d + i
            diag_index[i, column] = icf0 + c * width + i
            diag_mask[i, column] = True
            mean_index[:, column] = means0 + c * d + np.arange(d)
        for position, (i, j) in enumerate(lower_positions(d)):
            lower_index[j, c * d + i] = icf0 + c * width + d + position
            lower_mask[j, c * d + i] = True
    q_index = icf0 + np.arange(k)[:, None] * width + np.arange(d)[None, :]
    l_index = (icf0 + np.arange(k)[:, None] * width + d
               + np.arange(width - d)[None, :]).ravel()
    points = data["x"]
    wishart_n = d + m + 1
    constant = (-n * d * 0.5 * math.log(2 * math.pi)
                - k * (wishart_n * d * math.log(gamma / math.sqrt(2))
                       - multigammaln(0.5 * wishart_n, d)))

    def fn(x, ops):
        alpha = x[:k]
        w = (ops.where(diag_mask, ops.exp(x[diag_index]), 0.0)
             + ops.where(lower_mask, x[lower_index], 0.0))
        shift = ops.sum(w * x[mean_index], axis=0)
        z = ops.matmul(points, w) - shift
        squares = ops.sum(ops.reshape(z ** 2, (n, k, d)), axis=2)
        q = x[q_index]
        sum_q = ops.sum(q, axis=1)
        inner = alpha + sum_q - 0.5 * squares
        prior = (0.5 * gamma * gamma * (ops.sum(ops.exp(q) ** 2) + ops.sum(x[l_index] ** 2))
                 - m * ops.sum(sum_q))
        return (constant + ops.sum(logsumexp(inner, ops)) - n * logsumexp(alpha, ops)
                + prior)

    rows, columns = (np.array(v, dtype=np.intp).reshape(-1)
                     for v in zip(*lower_positions(d), strict=True)) if d > 1 else (
        np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp))

    def gradient(x, ops):
        """With r the responsibilities (softmax over k of the inner terms), z = Q_k(x_n − μ_k)
        and S_k = Σ_n r_nk z_nk: ∂α = Σ_n r_n − n softmax(α); ∂μ_k = Q_kᵀ S_k;
        ∂Q_k = −Σ_n r_nk z_nk (x_n − μ_k)ᵀ, through exp on the diagonal, plus Σ_n r_nk for
        each q (the log-determinant) and the prior's γ² exp(2q) − m and γ² l."""
        alpha, means = x[:k], np.reshape(x[means0:icf0], (k, d))
        w = (ops.where(diag_mask, ops.exp(x[diag_index]), 0.0)
             + ops.where(lower_mask, x[lower_index], 0.0))
        q_matrix = np.transpose(np.reshape(w, (d, k, d)), (1, 2, 0))   # [k, i, j] = Q_k[i, j]
        z = np.reshape(ops.matmul(points, w) - ops.sum(w * x[mean_index], axis=0), (n, k, d))
        inner = alpha + ops.sum(x[q_index], axis=1) - 0.5 * ops.sum(z * z, axis=2)
        r = ops.exp(inner - np.reshape(logsumexp(inner, ops), (n, 1)))
        rz = np.reshape(r, (n, k, 1)) * z
        s = ops.sum(rz, axis=0)                                          # [k, i]
        d_alpha = ops.sum(r, axis=0) - n * ops.exp(alpha - logsumexp(alpha, ops))
        d_means = ops.sum(np.reshape(s, (k, d, 1)) * q_matrix, axis=1)   # [k, j]
        d_q_matrix = (np.reshape(s, (k, d, 1)) * np.reshape(means, (k, 1, d))
                      - ops.matmul(np.transpose(rz, (1, 2, 0)), points))  # [k, i, j]
        q = x[q_index]
        diagonal = d_q_matrix[:, np.arange(d), np.arange(d)]
        d_q = (ops.sum(r, axis=0)[:, None] + diagonal * ops.exp(q)
               + gamma * gamma * ops.exp(q) ** 2 - m)
        d_l = d_q_matrix[:, rows, columns] + gamma * gamma * np.reshape(x[l_index], (k, -1))
        return np.concatenate([d_alpha, np.ravel(d_means),
                               np.ravel(np.concatenate([d_q, d_l], axis=1))])

    icf = np.concatenate([data["q"], data["l"]], axis=1)
    x0 = np.concatenate([data["alpha"], data["means"].ravel(), icf.ravel()])
    return Problem("gmm", k, fn=fn, x0=x0, gradient=gradient)


# ---- lstm ----------------------------------------------------------------------------------

def lstm_data(layers: int, hidden: int, length: int) -> dict[str, np.ndarray]:
    """Seeded inputs in ADBench's layout: main parameters (2l × 4b: each layer's weight row,
    then its bias row), extra parameters (3 × b: input scale, output scale, output bias),
    state (2l × b: each layer's hidden row, then its cell row) and sequence (c × b), drawn from
    ``default_rng(31337)`` uniform in [−1, 1), in that order."""
    rng = np.random.default_rng(SEED)
    return {"main": rng.uniform(-1.0, 1.0, (2 * layers, 4 * hidden)),
            "extra": rng.uniform(-1.0, 1.0, (3, hidden)),
            "state": rng.uniform(-1.0, 1.0, (2 * layers, hidden)),
            "sequence": rng.uniform(-1.0, 1.0, (length, hidden))}


def _lstm(size: int | None, l: int, b: int) -> Problem:  # noqa: E741
    """ADBench's LSTM objective over x = [main parameters (2l × 4b), extra (3 × b)].

    Its gates are concat(x, h, x, h) · w + bias elementwise (forget and output gates read the
    input x, the input gate and the change read the hidden state h): built here as one 4 × b
    ``where`` of x and h, so that a layer's step is a handful of array operations.
    """
    c = int(size)
    data = lstm_data(l, b, c)
    sequence, state = data["sequence"], data["state"]
    reads_input = np.array([[True], [False], [True], [False]])
    count = (c - 1) * b

    def fn(x, ops):
        main = ops.reshape(x[: 8 * l * b], (2 * l, 4, b))
        extra = ops.reshape(x[8 * l * b:], (3, b))
        weights, biases = [main[2 * i] for i in range(l)], [main[2 * i + 1] for i in range(l)]
        scale_in, scale_out, bias_out = extra[0], extra[1], extra[2]
        hidden = [state[2 * i] for i in range(l)]
        cell = [state[2 * i + 1] for i in range(l)]
        total = 0.0
        for t in range(c - 1):
            layer_input = sequence[t] * scale_in
            for i in range(l):
                gates = ops.where(reads_input, layer_input, hidden[i]) * weights[i] + biases[i]
                sigmoids = 1.0 / (1.0 + ops.exp(-gates[:3]))
                cell[i] = cell[i] * sigmoids[0] + sigmoids[1] * ops.tanh(gates[3])
                hidden[i] = sigmoids[2] * ops.tanh(cell[i])
                layer_input = hidden[i]
            prediction = layer_input * scale_out + bias_out
            normalized = prediction - ops.log(ops.sum(ops.exp(prediction)) + 2.0)
            total = total + ops.sum(sequence[t + 1] * normalized)
        return -total / count

    x0 = np.concatenate([data["main"].ravel(), data["extra"].ravel()])
    return Problem("lstm", c, fn=fn, x0=x0)


# ---- ba ------------------------------------------------------------------------------------

CAMERA_PARAMETERS = 11
"""A camera: Rodrigues rotation (3), centre (3), focal length, principal point (2), radial
distortion (2), in that order (ADBench's)."""


def ba_data(n: int, m: int, p: int) -> dict[str, np.ndarray]:
    """One camera, one point, one weight and one feature from ``default_rng(31337)`` (camera
    and point normal, the camera's focal length 1 + |normal| and its distortion 0.01 × normal,
    the point 5 further along z, weight uniform in (0, 1), feature normal), replicated as
    ADBench's files are: n cameras, m points, p observations, the i-th seeing camera i mod n
    and point i mod m."""
    rng = np.random.default_rng(SEED)
    camera = rng.normal(size=CAMERA_PARAMETERS)
    camera[6] = 1.0 + abs(camera[6])
    camera[9:] *= 0.01
    point = rng.normal(size=3) + np.array([0.0, 0.0, 5.0])
    weight = rng.uniform()
    feature = rng.normal(size=2)
    return {"cameras": np.tile(camera, (n, 1)), "points": np.tile(point, (m, 1)),
            "weights": np.full(p, weight), "feature": feature,
            "camera_of": np.arange(p) % n, "point_of": np.arange(p) % m}


def _cross(a, b):
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def _ba(size: int | None, n: int, m: int) -> Problem:
    """Σ of the squared reprojection residuals w (project(camera, X) − feature) and weight
    residuals 1 − w², over x = [cameras (n × 11), points (m × 3), weights (p)].

    Coordinates are kept as columns (one array of p values each), so no stacking is needed.
    """
    p = int(size)
    data = ba_data(n, m, p)
    camera_of, point_of, feature = data["camera_of"], data["point_of"], data["feature"]
    points0 = CAMERA_PARAMETERS * n

    def fn(x, ops):
        cameras = ops.reshape(x[:points0], (n, CAMERA_PARAMETERS))[camera_of]
        points = ops.reshape(x[points0: points0 + 3 * m], (m, 3))[point_of]
        w = x[points0 + 3 * m:]
        rot = tuple(cameras[:, j] for j in range(3))
        centred = tuple(points[:, j] - cameras[:, 3 + j] for j in range(3))
        squared = rot[0] ** 2 + rot[1] ** 2 + rot[2] ** 2
        theta = ops.sqrt(squared)
        cos, sin = ops.cos(theta), ops.sin(theta)
        axis = tuple(r / theta for r in rot)
        along = (axis[0] * centred[0] + axis[1] * centred[1] + axis[2] * centred[2]) * (1.0 - cos)
        turned = _cross(axis, centred)
        rotated = tuple(centred[j] * cos + turned[j] * sin + axis[j] * along for j in range(3))
        projected = (rotated[0] / rotated[2], rotated[1] / rotated[2])
        radius = projected[0] ** 2 + projected[1] ** 2
        scale = 1.0 + cameras[:, 9] * radius + cameras[:, 10] * radius * radius
        focal = cameras[:, 6]
        residual_u = w * (projected[0] * scale * focal + cameras[:, 7] - feature[0])
        residual_v = w * (projected[1] * scale * focal + cameras[:, 8] - feature[1])
        return (ops.sum(residual_u ** 2) + ops.sum(residual_v ** 2)
                + ops.sum((1.0 - w ** 2) ** 2))

    x0 = np.concatenate([data["cameras"].ravel(), data["points"].ravel(), data["weights"]])
    return Problem("ba", p, fn=fn, x0=x0)


FAMILIES = (
    Family("lse", "log Σ exp(x_i), stably; x = RandomState(31337).rand(n) (gradbench's)", _lse,
           "n", (10, 1000), options={"n": 1000}, limits={"n": (1, 100_000_000)}),
    Family("gmm", "GMM log-posterior of ADBench/gradbench: K Gaussians in d dimensions over n "
           "points, Wishart prior (m, γ); gradient over α, means, icf; size = K", _gmm, "k",
           (2, 5), options={"d": 2, "k": 5, "n": 1000, "gamma": 1.0, "m": 0},
           limits={"d": (1, 256), "k": (1, 100_000), "n": (1, 10_000_000),
                   "gamma": (1e-300, math.inf), "m": (0, 1_000_000)}),
    Family("lstm", "ADBench's LSTM loss: l layers of a diagonal LSTM with hidden size b over a "
           "seeded sequence of length c; gradient over main and extra parameters; size = c",
           _lstm, "c", (4, 16), min_size=2, options={"l": 2, "b": 14, "c": 1024},
           limits={"l": (1, 1024), "b": (1, 1_000_000), "c": (2, 10_000_000)}),
    Family("ba", "bundle adjustment of ADBench: squared reprojection residuals (Rodrigues "
           "rotation, radial distortion, weighted) and weight residuals of p observations of "
           "m points by n cameras, replicated from one seeded camera, point and feature",
           _ba, "p", (4, 32), options={"n": 2, "m": 3, "p": 10},
           limits={"n": (1, 1_000_000), "m": (1, 10_000_000), "p": (1, 100_000_000)}),
)
