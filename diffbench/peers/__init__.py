"""Peer libraries as backends: HIPS autograd and PyTorch (reverse mode), numdifftools and
SciPy's ``scipy.differentiate`` (finite differences), registered as ``diffbench.backends``
entry-point plugins.

Each backend class imports without its library; ``unavailable()`` then says how to install it,
and the cases of a config that names it become ``unsupported`` rows.
"""
