"""The PyTorch adapter of :class:`finkcube.ml.CubeDataset`: its items as tensors.

PyTorch is optional. This module imports it when it is itself imported (only
:meth:`finkcube.ml.CubeDataset.as_torch` does, and a ``DataLoader`` worker unpickling a
:class:`TorchCubeDataset`); :class:`TorchCubeDataset` is a module-level class, so that it
pickles by reference into spawned workers. Without PyTorch its base is ``object`` and
creating one raises :class:`~finkcube.errors.InputError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from finkcube.errors import InputError

try:
    import torch
    from torch.utils.data import Dataset as _Base
except ImportError:  # PyTorch is optional
    torch = None
    _Base = object

__all__ = ["TorchCubeDataset"]


class _Items(Protocol):
    """What the adapter wraps: a sized dataset of ``(numpy array, target, ...)`` items."""

    def __len__(self) -> int: ...

    def __getitem__(self, i: int) -> tuple[Any, ...]: ...


class TorchCubeDataset(_Base):
    """A :class:`~finkcube.ml.CubeDataset` as a ``torch.utils.data.Dataset``.

    Items are those of the wrapped dataset with ``x`` as a ``torch.Tensor``. It pickles as
    the wrapped dataset does (its path and options), for ``DataLoader`` workers.

    Raises
    ------
    InputError
        When PyTorch is not installed (``pip install torch``).
    """

    def __init__(self, cubes: _Items) -> None:
        if torch is None:
            raise InputError("as_torch() needs PyTorch: pip install torch")
        self.cubes = cubes

    def __len__(self) -> int:
        return len(self.cubes)

    def _tensor(self, item: tuple[Any, ...]) -> tuple[Any, ...]:
        x, *rest = item
        return (torch.as_tensor(x), *rest)

    def __getitem__(self, i: int) -> tuple[Any, ...]:
        return self._tensor(self.cubes[i])

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[Any, ...]]:
        """A batch of items in one read (``DataLoader`` calls it when it exists)."""
        many = getattr(self.cubes, "__getitems__", None)
        items = many(indices) if many is not None else [self.cubes[i] for i in indices]
        return [self._tensor(item) for item in items]
