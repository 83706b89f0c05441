def wiggle(x, ops):
    return ops.sum(ops.sin(3.0 * x) * x**2) + ops.exp(x[0] * x[1])


def vector_valued(x, ops):
    return x * 2.0


def broken(x, ops):
    raise RuntimeError("boom")


def goes_nan(x, ops):
    return ops.log(x[0])
