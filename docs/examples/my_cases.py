"""An example of your own function for diffbench: written once over ``ops``, so that every
method (numpy, the 50-digit mpmath reference, SymPy, diffbench's engine, JAX) runs the same
source.

    diffbench advise docs/examples/my_cases.py:wiggle --point 0.3,-1.2,2
    diffbench advise docs/examples/my_cases.py:wiggle --point 0.3,-1.2,2 --scale
"""


def wiggle(x, ops):
    """Σ sin(3 x_i) x_i² + exp(x_0 x_1): any length of two or more."""
    return ops.sum(ops.sin(3.0 * x) * x**2) + ops.exp(x[0] * x[1])
