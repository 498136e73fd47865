"""The PyTorch adapter of :class:`finkcube.ml.CubeDataset`: its items as tensors.

PyTorch is optional: it is imported only when :func:`torch_dataset_class` is first called
(by :meth:`finkcube.ml.CubeDataset.as_torch`).
"""

from __future__ import annotations

import functools
from typing import Any, Protocol

from finkcube.errors import InputError


class _Items(Protocol):
    """What the adapter wraps: a sized dataset of ``(numpy array, target)`` items."""

    def __len__(self) -> int: ...

    def __getitem__(self, i: int) -> tuple[Any, Any]: ...


__all__ = ["torch_dataset_class"]


@functools.cache
def torch_dataset_class() -> type:
    """Return the ``torch.utils.data.Dataset`` class wrapping a :class:`~finkcube.ml.CubeDataset`.

    Built on the first call (PyTorch is imported only then) and cached.

    Raises
    ------
    InputError
        When PyTorch is not installed (``pip install torch``).
    """
    try:
        import torch
        from torch.utils.data import Dataset
    except ImportError as exc:
        raise InputError("as_torch() needs PyTorch: pip install torch") from exc

    class TorchCubeDataset(Dataset):
        """A :class:`CubeDataset` whose items are ``(torch.Tensor, target)``."""

        def __init__(self, cubes: _Items) -> None:
            self.cubes = cubes

        def __len__(self) -> int:
            return len(self.cubes)

        def __getitem__(self, i: int) -> tuple[Any, Any]:
            x, target = self.cubes[i]
            return torch.from_numpy(x), target

    return TorchCubeDataset
