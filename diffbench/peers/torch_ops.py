"""The ops contract over PyTorch: float64 tensors behind a thin operator wrapper.

A family's function may close over numpy constants (``w @ u`` with ``u`` an ndarray), which
torch's operators refuse beside a tensor that requires grad.  :class:`TorchArray` holds a tensor
and turns such operands into tensors (``torch.from_numpy``: shared memory, no copy) before it
calls torch's own operator; the functions below unwrap their arguments the same way and wrap
their results; the elementwise functions of :data:`diffbench.ops.UNARY` are torch's own, by the
same names.  Invariants: every wrapped value is a float tensor (float64 unless ``astype`` made
it another), or a bool tensor from a comparison; Python scalars stay scalars, which torch
combines without changing the dtype.
"""

from __future__ import annotations

import operator
from collections.abc import Callable

import numpy as np
import torch

from diffbench.ops import UNARY

Axis = int | tuple[int, ...] | None


def tensor(value: object) -> object:
    """The tensor behind ``value`` (a TorchArray's, or an ndarray's), else ``value`` itself."""
    if type(value) is TorchArray:
        return value.t
    if isinstance(value, np.ndarray):
        if value.dtype.name == "bfloat16":  # torch does not read ml_dtypes' bfloat16
            return torch.from_numpy(value.astype(np.float32)).to(torch.bfloat16)
        return torch.from_numpy(np.ascontiguousarray(value))
    return value


def _as_tensor(value: object) -> torch.Tensor:
    """Like :func:`tensor`, with scalars made float64 tensors (for functions taking tensors)."""
    t = tensor(value)
    return t if isinstance(t, torch.Tensor) else torch.tensor(t, dtype=torch.float64)


def _forward(op: Callable[[object, object], object]):
    def method(self: TorchArray, other: object) -> TorchArray:
        return TorchArray(op(self.t, tensor(other)))

    return method


def _reflected(op: Callable[[object, object], object]):
    def method(self: TorchArray, other: object) -> TorchArray:
        return TorchArray(op(tensor(other), self.t))

    return method


class TorchArray:
    """A tensor ``t`` with numpy's operators, accepting ndarray operands on either side."""

    __slots__ = ("t",)
    __array_ufunc__ = None  # numpy defers to the reflected operators below

    def __init__(self, t: torch.Tensor) -> None:
        self.t = t

    shape = property(lambda self: tuple(self.t.shape))
    ndim = property(lambda self: self.t.dim())
    size = property(lambda self: self.t.numel())

    def __len__(self) -> int:
        return len(self.t)

    def __repr__(self) -> str:
        return f"TorchArray({self.t!r})"

    def __getitem__(self, index: object) -> TorchArray:
        return TorchArray(self.t[tensor(index)])

    def __neg__(self) -> TorchArray:
        return TorchArray(-self.t)

    def __pos__(self) -> TorchArray:
        return self

    def __abs__(self) -> TorchArray:
        return TorchArray(torch.abs(self.t))

    __add__ = _forward(operator.add)
    __radd__ = _reflected(operator.add)
    __sub__ = _forward(operator.sub)
    __rsub__ = _reflected(operator.sub)
    __mul__ = _forward(operator.mul)
    __rmul__ = _reflected(operator.mul)
    __truediv__ = _forward(operator.truediv)
    __rtruediv__ = _reflected(operator.truediv)
    __pow__ = _forward(operator.pow)
    __rpow__ = _reflected(operator.pow)
    __matmul__ = _forward(operator.matmul)
    __rmatmul__ = _reflected(operator.matmul)
    __lt__ = _forward(operator.lt)
    __le__ = _forward(operator.le)
    __gt__ = _forward(operator.gt)
    __ge__ = _forward(operator.ge)
    __eq__ = _forward(operator.eq)
    __ne__ = _forward(operator.ne)
    __hash__ = None


def _elementwise(fn: Callable[[torch.Tensor], torch.Tensor], name: str):
    def apply(x: object) -> TorchArray:
        return TorchArray(fn(_as_tensor(x)))

    apply.__name__ = apply.__qualname__ = name
    apply.__doc__ = f"Elementwise {name} (torch.{fn.__name__})."
    return apply


globals().update({name: _elementwise(getattr(torch, name), name) for name in UNARY})


def maximum(x: object, y: object) -> TorchArray:
    """Elementwise max (torch.maximum: at a tie each argument gets half the cotangent)."""
    return TorchArray(torch.maximum(_as_tensor(x), _as_tensor(y)))


def minimum(x: object, y: object) -> TorchArray:
    """Elementwise min (torch.minimum: at a tie each argument gets half the cotangent)."""
    return TorchArray(torch.minimum(_as_tensor(x), _as_tensor(y)))


def where(condition: object, a: object, b: object) -> TorchArray:
    """``a`` where ``condition`` holds, else ``b``."""
    return TorchArray(torch.where(_as_tensor(condition), _as_tensor(a), _as_tensor(b)))


def sum(x: object, axis: Axis = None) -> TorchArray:  # noqa: A001
    """Sum over ``axis`` (all axes by default)."""
    t = _as_tensor(x)
    return TorchArray(torch.sum(t) if axis is None else torch.sum(t, dim=axis))


def mean(x: object, axis: Axis = None) -> TorchArray:
    """Mean over ``axis`` (all axes by default)."""
    t = _as_tensor(x)
    return TorchArray(torch.mean(t) if axis is None else torch.mean(t, dim=axis))


def prod(x: object, axis: Axis = None) -> TorchArray:
    """Product over ``axis`` (all axes by default); torch reduces one axis at a time."""
    t = _as_tensor(x)
    if axis is None:
        return TorchArray(torch.prod(t))
    for dim in sorted((d % t.dim() for d in np.atleast_1d(axis)), reverse=True):
        t = torch.prod(t, dim=int(dim))
    return TorchArray(t)


def matmul(a: object, b: object) -> TorchArray:
    """``a @ b`` with numpy's rules for 1-d operands and batch broadcasting."""
    return TorchArray(torch.matmul(_as_tensor(a), _as_tensor(b)))


def dot(a: object, b: object) -> TorchArray:
    """numpy's dot for operands of at most 2 dimensions (a product when one is a scalar)."""
    ta, tb = _as_tensor(a), _as_tensor(b)
    if ta.dim() == 0 or tb.dim() == 0:
        return TorchArray(ta * tb)
    if ta.dim() > 2 or tb.dim() > 2:
        raise ValueError(f"dot takes operands of at most 2 dimensions, got shapes "
                         f"{tuple(ta.shape)} and {tuple(tb.shape)}: use matmul")
    return TorchArray(torch.matmul(ta, tb))


DTYPES = {"float64": torch.float64, "float32": torch.float32, "float16": torch.float16,
          "bfloat16": torch.bfloat16}
"""torch's dtype of each numpy (or ml_dtypes) float dtype, by name."""


def astype(x: object, dtype: object) -> TorchArray:
    """``x``'s values in the float ``dtype`` (a numpy or ml_dtypes dtype)."""
    return TorchArray(_as_tensor(x).to(DTYPES[np.dtype(dtype).name]))


def reshape(x: object, shape: int | tuple[int, ...]) -> TorchArray:
    """``x`` with a new shape (same number of elements)."""
    return TorchArray(torch.reshape(_as_tensor(x), (shape,) if isinstance(shape, int)
                                    else tuple(shape)))
