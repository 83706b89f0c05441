"""The workload families against naive implementations written here independently: plain
loops over the literal formulas, on inputs drawn here in the documented order."""

import math

import mpmath
import numpy as np
import pytest

import diffbench.ad as ad
from diffbench.families import BUILTIN, make
from diffbench.ops import mpmath_ops, sympy_ops
from diffbench.reference import reference_gradient


def relative(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def naive_fd(f, x, h=1e-5):
    """Central differences of a naive f, component by component."""
    g = []
    for i in range(len(x)):
        up, down = list(x), list(x)
        up[i] += h
        down[i] -= h
        g.append((f(up) - f(down)) / (2 * h))
    return np.array(g)


def engine_gradient(problem):
    return ad.grad(lambda x: problem.fn(x, ad))(problem.x0.copy())


def digits_against_reference(problem, gradient) -> float:
    reference = reference_gradient(problem, 50, 30.0, use_cache=False).as_float()
    err = np.max(np.abs(gradient - reference)) / np.max(np.abs(reference))
    return -math.log10(max(err, 1e-17))


# ---- lse -----------------------------------------------------------------------------------

def naive_lse(x):
    return math.log(math.fsum(math.exp(v) for v in x))


def naive_lse_gradient(x):
    total = math.fsum(math.exp(v) for v in x)
    return np.array([math.exp(v) / total for v in x])


@pytest.mark.parametrize("n", [1, 2, 7, 100])
def test_lse_matches_the_naive_formula(n):
    problem = make("lse", n)
    legacy = np.random.RandomState(31337).rand(n)
    assert np.array_equal(problem.x0, legacy)
    assert relative(problem.f(problem.x0), naive_lse(legacy)) <= 1e-12
    expected = naive_lse_gradient(legacy)
    assert relative(problem.gradient(problem.x0, np), expected) <= 1e-12
    assert relative(engine_gradient(problem), expected) <= 1e-12


def test_lse_is_stable_where_the_literal_formula_overflows():
    problem = make("lse", 5)
    x = problem.x0 + 1000.0
    with np.errstate(over="ignore"):
        assert math.isinf(np.log(np.sum(np.exp(x))))
    assert problem.f(x) == pytest.approx(naive_lse(problem.x0) + 1000.0, rel=1e-14)
    assert np.all(np.isfinite(ad.grad(lambda v: problem.fn(v, ad))(x)))


def test_lse_reaches_a_million_inputs():
    """The maximum's cotangent, 1 − Σ softmax, is zero only up to the rounding of a sum of
    10⁶ terms (about eps), and it lands on the largest entry: normwise about 1e-10 of
    gradient entries of 1e-6."""
    problem = make("lse", 10**6)
    assert problem.n == 10**6
    g = engine_gradient(problem)
    assert relative(g, problem.gradient(problem.x0, np)) <= 1e-9


# ---- gmm -----------------------------------------------------------------------------------

def gmm_inputs(d, k, n):
    """The documented order: x, means, q, l, α from default_rng(31337)."""
    rng = np.random.default_rng(31337)
    x = [list(rng.normal(size=d)) for _ in range(n)]
    means = [list(rng.uniform(size=d)) for _ in range(k)]
    q = [list(rng.normal(size=d)) for _ in range(k)]
    lower = [list(rng.normal(size=d * (d - 1) // 2)) for _ in range(k)]
    alpha = list(rng.normal(size=k))
    return x, means, q, lower, alpha


def unpack(params, d, k):
    """(α, means, icf) from the packed vector, icf_k = [q_k, l_k]."""
    width = d + d * (d - 1) // 2
    alpha = params[:k]
    means = [params[k + c * d: k + (c + 1) * d] for c in range(k)]
    start = k + k * d
    icf = [params[start + c * width: start + (c + 1) * width] for c in range(k)]
    return alpha, means, icf


def naive_q(icf_k, d):
    """Q_k: exp(q_k) on the diagonal, l_k below it, column by column."""
    matrix = [[0.0] * d for _ in range(d)]
    for r in range(d):
        matrix[r][r] = math.exp(icf_k[r])
    position = d
    for column in range(d):
        for row in range(column + 1, d):
            matrix[row][column] = icf_k[position]
            position += 1
    return matrix


def naive_log_sum_exp(values):
    top = max(values)
    return top + math.log(math.fsum(math.exp(v - top) for v in values))


def naive_log_multigamma(a, p):
    total = p * (p - 1) / 4.0 * math.log(math.pi)
    for j in range(1, p + 1):
        total += math.lgamma(a + (1.0 - j) / 2.0)
    return total


def naive_gmm(params, points, d, k, gamma=1.0, m=0):
    alpha, means, icf = unpack(list(params), d, k)
    n = len(points)
    matrices = [naive_q(icf[c], d) for c in range(k)]
    total = 0.0
    for point in points:
        terms = []
        for c in range(k):
            centred = [point[j] - means[c][j] for j in range(d)]
            y = [sum(matrices[c][r][j] * centred[j] for j in range(d)) for r in range(d)]
            terms.append(alpha[c] + sum(icf[c][:d]) - 0.5 * sum(v * v for v in y))
        total += naive_log_sum_exp(terms)
    prior = 0.0
    for c in range(k):
        squares = sum(math.exp(v) ** 2 for v in icf[c][:d]) + sum(v * v for v in icf[c][d:])
        prior += 0.5 * gamma * gamma * squares - m * sum(icf[c][:d])
    wishart_n = d + m + 1
    c_term = (wishart_n * d * (math.log(gamma) - 0.5 * math.log(2.0))
              - naive_log_multigamma(0.5 * wishart_n, d))
    return (-n * d * 0.5 * math.log(2.0 * math.pi) + total - n * naive_log_sum_exp(alpha)
            + prior - k * c_term)


def test_gmm_defaults_and_packing():
    problem = make("gmm")
    assert problem.size == 5 and problem.variant == "default"
    assert problem.n == 5 + 5 * 2 + 5 * 3
    x, means, q, lower, alpha = gmm_inputs(2, 5, 1000)
    packed = list(alpha) + [v for mu in means for v in mu] + [
        v for c in range(5) for v in list(q[c]) + list(lower[c])]
    assert np.array_equal(problem.x0, np.array(packed))


@pytest.mark.parametrize("d,k,n,options", [
    (1, 1, 3, {}), (2, 5, 40, {}), (3, 2, 6, {}), (4, 3, 5, {"gamma": 0.7, "m": 2}),
])
def test_gmm_matches_the_naive_formula(d, k, n, options):
    problem = make("gmm", k, d=d, n=n, **options)
    points = gmm_inputs(d, k, n)[0]
    expected = naive_gmm(problem.x0, points, d, k, **options)
    assert relative(problem.f(problem.x0), expected) <= 1e-12
    with mpmath.workdps(30):
        high = float(problem.fn(mpmath_ops.asarray(problem.x0), mpmath_ops))
    assert relative(high, expected) <= 1e-12
    estimate = naive_fd(lambda v: naive_gmm(v, points, d, k, **options), list(problem.x0))
    closed = problem.gradient(problem.x0, np)
    assert relative(closed, estimate) <= 1e-6
    assert relative(engine_gradient(problem), closed) <= 1e-12


def test_gmm_is_finite_where_the_product_of_densities_underflows():
    d, k, n = 2, 5, 1000
    problem = make("gmm")
    points = gmm_inputs(d, k, n)[0]
    alpha, means, icf = unpack(list(problem.x0), d, k)
    weights = [math.exp(a) / sum(math.exp(b) for b in alpha) for a in alpha]
    likelihood = 1.0
    for point in points:
        density = 0.0
        for c in range(k):
            matrix = naive_q(icf[c], d)
            y = [sum(matrix[r][j] * (point[j] - means[c][j]) for j in range(d))
                 for r in range(d)]
            det = math.prod(matrix[r][r] for r in range(d))
            density += (weights[c] * det * (2 * math.pi) ** (-d / 2)
                        * math.exp(-0.5 * sum(v * v for v in y)))
        likelihood *= density
    assert likelihood == 0.0
    assert math.isfinite(problem.f(problem.x0))
    assert np.all(np.isfinite(engine_gradient(problem)))


def test_gmm_gradient_against_the_reference():
    """The 50-digit reference here is mpmath's own differences of f (no closed form)."""
    from dataclasses import replace

    problem = replace(make("gmm", 3, d=3, n=8), gradient=None)
    assert digits_against_reference(problem, engine_gradient(problem)) >= 12


def test_gmm_runs_symbolically_at_a_tiny_size():
    problem = make("gmm", 2, d=2, n=3)
    expr = sympy_ops.as_expr(problem.fn(sympy_ops.symbols(problem.n), sympy_ops))
    assert len(expr.free_symbols) == problem.n


def test_workloads_are_registered_with_their_options():
    assert BUILTIN["gmm"].options == {"d": 2, "k": 5, "n": 1000, "gamma": 1.0, "m": 0}
    assert BUILTIN["gmm"].size_param == "k"
    assert BUILTIN["lse"].size_param == "n"


# ---- lstm ----------------------------------------------------------------------------------

def lstm_inputs(layers, hidden, length):
    """The documented order: main, extra, state, sequence, uniform in [−1, 1)."""
    rng = np.random.default_rng(31337)
    main = rng.uniform(-1.0, 1.0, (2 * layers, 4 * hidden)).tolist()
    extra = rng.uniform(-1.0, 1.0, (3, hidden)).tolist()
    state = rng.uniform(-1.0, 1.0, (2 * layers, hidden)).tolist()
    sequence = rng.uniform(-1.0, 1.0, (length, hidden)).tolist()
    return main, extra, state, sequence


def sigmoid(v):
    return 1.0 / (1.0 + math.exp(-v))


def naive_lstm(params, state, sequence, layers, hidden):
    """ADBench's loss, literally: gates = concat(x, h, x, h) * w + bias."""
    b = hidden
    main = [list(params[r * 4 * b:(r + 1) * 4 * b]) for r in range(2 * layers)]
    extra = [list(params[8 * layers * b + r * b: 8 * layers * b + (r + 1) * b])
             for r in range(3)]
    state = [list(row) for row in state]
    total, count = 0.0, 0
    current = sequence[0]
    for t in range(len(sequence) - 1):
        x = [current[j] * extra[0][j] for j in range(b)]
        new_state = [list(row) for row in state]
        for i in range(layers):
            weight, bias = main[2 * i], main[2 * i + 1]
            h, c = state[2 * i], state[2 * i + 1]
            stacked = x + h + x + h
            gates = [stacked[j] * weight[j] + bias[j] for j in range(4 * b)]
            forget = [sigmoid(g) for g in gates[0:b]]
            ingate = [sigmoid(g) for g in gates[b:2 * b]]
            outgate = [sigmoid(g) for g in gates[2 * b:3 * b]]
            change = [math.tanh(g) for g in gates[3 * b:]]
            cell = [c[j] * forget[j] + ingate[j] * change[j] for j in range(b)]
            new_h = [outgate[j] * math.tanh(cell[j]) for j in range(b)]
            new_state[2 * i], new_state[2 * i + 1] = new_h, cell
            x = new_h
        state = new_state
        prediction = [x[j] * extra[1][j] + extra[2][j] for j in range(b)]
        log_norm = math.log(sum(math.exp(p) for p in prediction) + 2.0)
        gold = sequence[t + 1]
        total += sum(gold[j] * (prediction[j] - log_norm) for j in range(b))
        count += b
        current = gold
    return -total / count


@pytest.mark.parametrize("layers,hidden,length", [(1, 1, 2), (2, 3, 5), (3, 2, 4)])
def test_lstm_matches_the_naive_formula(layers, hidden, length):
    problem = make("lstm", length, l=layers, b=hidden)
    main, extra, state, sequence = lstm_inputs(layers, hidden, length)
    packed = [v for row in main for v in row] + [v for row in extra for v in row]
    assert np.array_equal(problem.x0, np.array(packed))
    expected = naive_lstm(packed, state, sequence, layers, hidden)
    assert relative(problem.f(problem.x0), expected) <= 1e-12
    with mpmath.workdps(30):
        high = float(problem.fn(mpmath_ops.asarray(problem.x0), mpmath_ops))
    assert relative(high, expected) <= 1e-12
    estimate = naive_fd(lambda v: naive_lstm(v, state, sequence, layers, hidden), packed)
    assert relative(engine_gradient(problem), estimate) <= 1e-6


def test_lstm_gradient_against_the_reference():
    problem = make("lstm", 4, l=2, b=3)
    assert digits_against_reference(problem, engine_gradient(problem)) >= 12


def test_lstm_defaults_are_adbench_sizes():
    family = BUILTIN["lstm"]
    assert family.options == {"l": 2, "b": 14, "c": 1024} and family.size_param == "c"
    assert make("lstm", 3).n == 8 * 2 * 14 + 3 * 14


# ---- ba ------------------------------------------------------------------------------------

def ba_inputs(n, m, p):
    """One camera, point, weight and feature in the documented order, replicated."""
    rng = np.random.default_rng(31337)
    camera = list(rng.normal(size=11))
    camera[6] = 1.0 + abs(camera[6])
    camera[9], camera[10] = 0.01 * camera[9], 0.01 * camera[10]
    point = list(rng.normal(size=3))
    point[2] += 5.0
    weight = rng.uniform()
    feature = list(rng.normal(size=2))
    return [camera] * n, [point] * m, [weight] * p, feature


def naive_ba(params, n, m, p, feature):
    cams = [list(params[11 * i: 11 * (i + 1)]) for i in range(n)]
    pts = [list(params[11 * n + 3 * j: 11 * n + 3 * (j + 1)]) for j in range(m)]
    weights = list(params[11 * n + 3 * m:])
    total = 0.0
    for i in range(p):
        cam, point, w = cams[i % n], pts[i % m], weights[i]
        rot, centre = cam[0:3], cam[3:6]
        v = [point[j] - centre[j] for j in range(3)]
        theta = math.sqrt(sum(r * r for r in rot))
        k = [r / theta for r in rot]
        cross = [k[1] * v[2] - k[2] * v[1], k[2] * v[0] - k[0] * v[2], k[0] * v[1] - k[1] * v[0]]
        dot = sum(k[j] * v[j] for j in range(3))
        turned = [v[j] * math.cos(theta) + cross[j] * math.sin(theta)
                  + k[j] * dot * (1.0 - math.cos(theta)) for j in range(3)]
        proj = [turned[0] / turned[2], turned[1] / turned[2]]
        rsq = proj[0] ** 2 + proj[1] ** 2
        distortion = 1.0 + cam[9] * rsq + cam[10] * rsq * rsq
        for j in range(2):
            total += (w * (proj[j] * distortion * cam[6] + cam[7 + j] - feature[j])) ** 2
        total += (1.0 - w * w) ** 2
    return total


@pytest.mark.parametrize("n,m,p", [(1, 1, 1), (2, 3, 7), (3, 2, 8)])
def test_ba_matches_the_naive_formula(n, m, p):
    problem = make("ba", p, n=n, m=m)
    cams, pts, weights, feature = ba_inputs(n, m, p)
    packed = [v for c in cams for v in c] + [v for q in pts for v in q] + weights
    assert np.array_equal(problem.x0, np.array(packed))
    expected = naive_ba(packed, n, m, p, feature)
    assert relative(problem.f(problem.x0), expected) <= 1e-12
    with mpmath.workdps(30):
        high = float(problem.fn(mpmath_ops.asarray(problem.x0), mpmath_ops))
    assert relative(high, expected) <= 1e-12
    estimate = naive_fd(lambda v: naive_ba(v, n, m, p, feature), packed, h=1e-6)
    assert relative(engine_gradient(problem), estimate) <= 1e-6


def test_ba_gradient_against_the_reference():
    problem = make("ba", 5, n=2, m=3)
    assert digits_against_reference(problem, engine_gradient(problem)) >= 12
