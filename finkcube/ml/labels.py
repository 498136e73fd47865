"""Labels of a training set: ``diaObjectId -> label`` from a mapping, a CSV or a Parquet file."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

from finkcube.errors import InputError
from finkcube.ids import parse_id, parse_ids
from finkcube.names import OBJECT_ID

__all__ = ["LABEL", "label_arrays", "load_labels"]

#: The label column of a labels file and of a training set's table.
LABEL: Final = "label"


def load_labels(labels: Mapping[Any, Any] | str | os.PathLike[str]) -> dict[int, Any]:
    """Return ``{diaObjectId: label}`` from a mapping, a CSV or a Parquet file.

    A file has a ``diaObjectId`` column and a ``label`` column (or one other column).

    Raises
    ------
    InputError
        For a file that cannot be read, lacks the columns, or repeats an id.
    """
    if isinstance(labels, Mapping):
        return {parse_id(k): v for k, v in labels.items()}
    import pandas as pd

    path = Path(labels)
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            table = pd.read_parquet(path)
        else:
            table = pd.read_csv(path)
    except (OSError, ValueError, ImportError) as exc:
        raise InputError(f"cannot read the labels file {path}: {exc}") from exc
    others = [c for c in table.columns if c != OBJECT_ID]
    column = LABEL if LABEL in others else (others[0] if len(others) == 1 else None)
    if OBJECT_ID not in table.columns or column is None:
        raise InputError(
            f"the labels file {path} needs a {OBJECT_ID!r} column and a {LABEL!r} column, "
            f"found {list(table.columns)}"
        )
    ids = parse_ids(table[OBJECT_ID].astype(str))
    if len(set(ids)) != len(ids):
        raise InputError(f"the labels file {path} gives some diaObjectId more than once")
    return dict(zip(ids, table[column].tolist(), strict=True))


def label_arrays(by_id: Mapping[int, Any], ids: Sequence[int]) -> dict[int, np.ndarray]:
    """Each object's label as a one-element array of the labels' common dtype.

    Numbers (int, float, bool) keep their dtype; anything else is stored as a string.
    """
    values = [by_id[i] for i in ids]
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in values):
        raise InputError("a label is empty (None or NaN): give every object a label")
    common = np.asarray(values)
    if common.dtype.kind not in "biuf":
        common = np.asarray([str(v) for v in values], dtype=object)
    return {i: common[k : k + 1] for k, i in enumerate(ids)}
