"""Where :func:`finkcube.ml.export` writes a training set: a Zarr path, or an Icechunk commit.

A plain output is a path or fsspec URL that xarray and zarr-python write to directly. An
Icechunk output (``icechunk://PATH``, ``icechunk+s3://BUCKET/PREFIX``) is a repository: the
whole training set is written in one writable session on its ``main`` branch and published
by one commit, which an optional tag names for good (Icechunk's tags never move). The set
a model was trained on can then be read back exactly, however often the repository is
exported to again: ``repo.readonly_session(tag=NAME).store`` is a zarr store that plain
``xarray.open_zarr(..., consolidated=False)`` and :class:`finkcube.ml.CubeDataset` read
(a read-only session pickles, so ``DataLoader`` workers get it too).

Reading goes through :func:`open_group`, which takes either kind of path and any zarr store.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from finkcube.errors import InputError, StoreError
from finkcube.store.icechunk import IcechunkStore, is_icechunk, locate_icechunk
from finkcube.store.staging import consolidate

__all__ = ["Output", "open_group"]

#: The tags finkcube writes: names every Icechunk storage accepts as a file name.
_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def open_group(path: Any, storage_options: Mapping[str, Any] | None = None) -> Any:
    """The root group of a training set, read-only: at a path or URL, at the head of an
    Icechunk repository's ``main`` branch (``icechunk://...``), or in a zarr store."""
    import zarr

    if isinstance(path, str) and is_icechunk(path):
        store = locate_icechunk(path, storage_options).zarr(read_only=True)
        return zarr.open_group(store, mode="r", zarr_format=3)
    options = dict(storage_options) if storage_options else None
    return zarr.open_group(path, mode="r", storage_options=options)


class Output:
    """The destination of one export: what xarray writes to, and how the write ends.

    Parameters
    ----------
    out : str or path
        A Zarr path or fsspec URL, or an Icechunk repository's URL.
    tag : str, optional
        Name the export's commit (Icechunk outputs only).

    Raises
    ------
    InputError
        For a tag without an Icechunk output, or one the repository already has.
    """

    def __init__(self, out: str | os.PathLike[str], tag: str | None = None) -> None:
        self.url = os.fspath(out)
        self.tag = tag
        self._repo: IcechunkStore | None = None
        if is_icechunk(self.url):
            self._repo = locate_icechunk(self.url, None)
        elif tag is not None:
            raise InputError(
                f"--tag names an Icechunk commit: write to icechunk://PATH (or "
                f"icechunk+s3://BUCKET/PREFIX) to tag a training set, not {self.url}"
            )
        if tag is not None and not _TAG.fullmatch(tag):
            raise InputError(
                f"bad tag {tag!r}: use up to 100 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        if tag is not None and self._repo is not None and tag in self._repo.tags():
            raise InputError(
                f"{self.url} already has a tag {tag!r} (tags never move): choose another name"
            )

    @property
    def target(self) -> Any:
        """What :meth:`xarray.Dataset.to_zarr` writes to: the path, or the session's store."""
        return self.url if self._repo is None else self._repo.zarr(read_only=False)

    def exists(self) -> bool:
        """Whether something is already there (a repository's branch holding any node)."""
        if self._repo is not None:
            return self._repo.exists()
        import fsspec

        fs, where = fsspec.core.url_to_fs(self.url)
        return bool(fs.exists(where))

    def finish(self, marks: Mapping[str, Any], message: str) -> str | None:
        """Write the root attributes ``marks`` (the completion mark last of all), then
        consolidate a plain output, or commit (and tag) an Icechunk one.

        Returns
        -------
        str or None
            The Icechunk commit's snapshot id; None for a plain output.
        """
        import zarr

        group = zarr.open_group(self.target, mode="r+", zarr_format=3)
        group.attrs.update(dict(marks))
        if self._repo is None:
            consolidate(self.url, "")  # plain xarray then opens the output in one read
            return None
        snapshot = self._repo.commit(message)
        if snapshot is None:  # pragma: no cover - an export always writes something
            raise StoreError(f"{self.url}: nothing was committed")
        if self.tag is not None:
            self._repo.tag(self.tag, snapshot)
        return snapshot
