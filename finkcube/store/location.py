"""Where a store is: :class:`Store`, its fsspec filesystem, its Zarr store, batched file I/O.

Locate a store once with :func:`locate` and pass the :class:`Store` down: every public store
function takes one as well as a path or URL, so a build does not resolve the URL (and, for
an object store, set up its filesystem) again at every call. Nothing here knows what a
finkcube store holds: that is :mod:`finkcube.store.layout`'s job.

The batched writes (:meth:`Store.upload`, :meth:`Store.replace`) put bytes zarr-python
produced, staged in one of its ``MemoryStore``: on an object store one concurrent batch
instead of zarr's sequential round trips, on disk one plain write per file.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

import orjson

from finkcube.errors import InputError, StoreError, StoreRefusedError
from finkcube.store.localfiles import link_files, read_files, write_aside, write_files

__all__ = ["META", "STAGING", "Store", "StoreLike", "locate"]

#: The metadata file of every Zarr v3 node.
META = "zarr.json"
#: The folder of the files of writes in flight: staged copies of cubes
#: (:mod:`finkcube.store.versions`) and files written aside (:meth:`Store.replace`). It is
#: no object id (finkcube's listings skip it) and is removed once empty.
STAGING = ".finkcube-staging"


@dataclass(frozen=True, slots=True)
class Store:
    """A located store: its URL as given, its fsspec filesystem and root path, its options.

    Get one from :func:`locate`; pass it wherever a store path or URL is accepted.

    Attributes
    ----------
    url : str
        The store as the user gave it (used in messages).
    fs : fsspec.AbstractFileSystem
        Its filesystem.
    root : str
        Its root path on ``fs``.
    options : mapping
        The fsspec storage options it was located with.

    Examples
    --------
    >>> store = locate("memory://doc-located.zarr")
    >>> store.root, locate(store) is store
    ('/doc-located.zarr', True)
    """

    url: str
    fs: Any
    root: str
    options: Mapping[str, Any]

    def path(self, *parts: str) -> str:
        """The full path on :attr:`fs` of a key under the root."""
        return "/".join((self.root, *parts))

    @property
    def local(self) -> bool:
        """Whether the store is on local disk (read and written with plain file calls)."""
        from fsspec.implementations.local import LocalFileSystem

        return isinstance(self.fs, LocalFileSystem)

    @property
    def shared_writes(self) -> bool:
        """Whether several processes may write the store at once (each its own cubes)."""
        return True

    @property
    def consolidates(self) -> bool:
        """Whether zarr reads the consolidated metadata of the store's groups (Icechunk's
        store refuses to: it keeps every node's metadata in its own snapshot)."""
        return True

    @property
    def streams(self) -> bool:
        """Whether a large cube is written by zarr a chunk at a time into a staged copy in
        the store, then copied into place (:mod:`finkcube.store.put`), rather than
        encoded whole in memory first."""
        return True

    @property
    def remote(self) -> bool:
        """Whether each file access is a round trip (an object store, not disk or memory)."""
        from fsspec.implementations.memory import MemoryFileSystem

        return not self.local and not isinstance(self.fs, MemoryFileSystem)

    @classmethod
    def claim(cls, store: object, storage_options: Mapping[str, Any] | None) -> Store | None:
        """The store of ``store`` if this kind of store is named so, else None.

        :func:`locate` asks each subclass of :class:`Store` (another kind of store, such as
        :class:`~finkcube.store.icechunk.IcechunkStore`) before reading ``store`` as a path
        or an fsspec URL; the plain kind claims nothing.
        """
        return None

    def exists(self, key: str = "") -> bool:
        """Whether a file or a folder is there under the root (the root itself for "")."""
        path = self.path(key) if key else self.root
        self.fs.invalidate_cache(path)
        return bool(self.fs.exists(path))

    def is_folder(self, key: str = "") -> bool:
        """Whether a key under the root (the root itself for "") is a folder."""
        return bool(self.fs.isdir(self.path(key) if key else self.root))

    def sizes(self, key: str = "") -> dict[str, int]:
        """The size in bytes of every file under a folder (the whole store for ""), by key."""
        path = self.path(key) if key else self.root
        start = len(self.root) + 1
        found = self.fs.find(path, detail=True)
        return {str(p)[start:]: int(info.get("size") or 0) for p, info in found.items()}

    def commit(self, message: str) -> str | None:
        """Publish what was written, for a transactional store (an Icechunk repository):
        its new snapshot's id. A plain store's writes are already visible: None."""
        return None

    def clear(self) -> None:
        """Delete the whole store, root and all."""
        self.fs.rm(self.root, recursive=True)
        self.fs.invalidate_cache(self.root)

    def zarr(self, *, read_only: bool, key: str = "") -> Any:
        """zarr-python's store of the root (or of the folder ``key`` under it): its
        ``LocalStore`` on disk, ``FsspecStore`` else."""
        from zarr.storage import FsspecStore, LocalStore

        if self.local:
            return LocalStore(self.path(key) if key else self.root, read_only=read_only)
        if key:
            return FsspecStore.from_mapper(self.fs.get_mapper(self.path(key)), read_only=read_only)
        return FsspecStore.from_url(
            self.url, storage_options=dict(self.options) or None, read_only=read_only
        )

    def read_json(self, *parts: str) -> dict[str, Any] | None:
        """A JSON document under the root, or None when there is none."""
        try:
            raw = self.fs.cat_file(self.path(*parts))
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise StoreError(f"{self.url}: {'/'.join(parts)} is not JSON ({exc})") from exc

    def read_many(self, parts: Iterable[str]) -> dict[str, bytes]:
        """Read many files at once (concurrently on object stores); missing ones left out.

        On local disk each is one plain read: fsspec's per-file overhead would be most of
        the cost of reading a small chunk.
        """
        if self.local:
            return read_files({part: self.path(part) for part in parts})
        wanted = {self.path(p): p for p in parts}
        if not wanted:
            return {}
        found = self.fs.cat(list(wanted), on_error="omit")
        return {wanted[k]: v for k, v in found.items() if k in wanted}

    def upload(self, files: Mapping[str, bytes]) -> None:
        """Put many files, keyed from the root, in one batch (concurrent on object stores).

        On local disk each is one plain write, its folders made as needed.
        """
        if not self.local:
            self.fs.pipe({self.path(k): v for k, v in files.items()})
            return
        write_files((self.path(key), data) for key, data in files.items())

    def replace(self, key: str, data: bytes) -> None:
        """Put one file whole, replacing the old one: a kill never leaves it half written.

        A local file is written aside, in the store's :data:`STAGING` folder, and renamed
        over the old one (object stores put whole objects anyway): what a killed write
        leaves is never inside a Zarr node, where plain zarr would warn about it, and is
        deleted by the next repair of the store (:func:`~finkcube.store.versions.repair`).
        """
        if not self.local:
            self.fs.pipe_file(self.path(key), data)
            return

        def write(partial: str) -> None:
            with open(partial, "wb") as file:
                file.write(data)

        write_aside(self.path(key), self.path(STAGING), write)

    def copy_files(self, pairs: Mapping[str, str]) -> None:
        """Copy files under the root, each ``source: target`` (keys), a target replaced whole.

        On local disk each target is a hard link to its source, made aside and renamed into
        place as :meth:`replace` does (no byte is copied; a plain copy where the file system
        has no links); on an object store, concurrent server-side copies.
        """
        if not self.local:
            if pairs:
                self.fs.copy([self.path(s) for s in pairs], [self.path(t) for t in pairs.values()])
            return
        moves = ((self.path(s), self.path(t)) for s, t in pairs.items())
        link_files(moves, self.path(STAGING))

    def remove(self, key: str) -> None:
        """Delete a folder under the root and all it holds; nothing happens if there is none.

        Another process deleting the same folder meanwhile is no failure.
        """
        path = self.path(key)
        for attempt in range(3):
            try:
                if self.fs.exists(path):
                    self.fs.rm(path, recursive=True)
                break
            except FileNotFoundError:
                if attempt == 2:
                    raise
            finally:
                self.fs.invalidate_cache(path)

    def remove_files(self, keys: Iterable[str]) -> None:
        """Delete files under the root, in the order given; missing ones are ignored."""
        for key in keys:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(self.path(key))

    def files_under(self, key: str) -> list[str]:
        """The keys (from the root) of every file under a folder; none when it is absent."""
        path = self.path(key)
        self.fs.invalidate_cache(path)
        try:
            found = self.fs.find(path)
        except (FileNotFoundError, NotADirectoryError):
            return []
        start = len(self.root) + 1
        return [str(p)[start:] for p in found if str(p).startswith(f"{self.root}/")]

    def names_in(self, key: str) -> list[str]:
        """The names of the entries of a folder under the root; none when it is absent."""
        path = self.path(key)
        self.fs.invalidate_cache(path)
        try:
            entries = self.fs.ls(path, detail=False)
        except (FileNotFoundError, NotADirectoryError):
            return []
        return [str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries]

    def refuse_unusable(self) -> None:
        """StoreRefusedError for a local path that can never become a store, whatever
        the options.

        A path under a regular file (``notes.txt/cubes.zarr``) or under a symbolic link to
        nothing, or whose folder cannot be written: caught before a build queries the service.
        """
        if not self.local:
            return
        path = os.path.abspath(self.root)
        if os.path.lexists(path):
            if not os.path.exists(path):
                raise StoreRefusedError(
                    f"{self.url} is a symbolic link to nothing: fix or remove it"
                )
            return
        parent = os.path.dirname(path)
        while not os.path.lexists(parent):
            parent = os.path.dirname(parent)
        if not os.path.exists(parent):
            raise StoreRefusedError(
                f"{self.url} cannot be created: {parent} is a symbolic link to nothing"
            )
        if not os.path.isdir(parent):
            raise StoreRefusedError(
                f"{self.url} cannot be created: {parent} is a file, not a folder"
            )
        if not os.access(parent, os.W_OK | os.X_OK):
            raise StoreRefusedError(
                f"{self.url} cannot be created: {parent} is not writable "
                f"({os.strerror(errno.EACCES).lower()})"
            )

    def children(self) -> list[str]:
        """The names of the root's entries that are object ids, ascending."""
        self.fs.invalidate_cache(self.root)
        try:
            entries = self.fs.ls(self.root, detail=False)
        except (FileNotFoundError, NotADirectoryError):
            return []
        names = (str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries)
        return sorted((n for n in names if n.isdigit() and n == str(int(n))), key=int)


#: What the public store functions accept as a store.
StoreLike: TypeAlias = "str | os.PathLike[str] | Store"


def locate(store: StoreLike, storage_options: Mapping[str, Any] | None = None) -> Store:
    """The :class:`Store` of a local path or fsspec URL (a :class:`Store` is returned as is).

    Parameters
    ----------
    store : str, path or Store
        A local path, an fsspec URL (``s3://bucket/cubes.zarr``, ``memory://cubes``), another
        kind of store a subclass of :class:`Store` claims (``icechunk://path``,
        ``icechunk+s3://bucket/prefix``, an ``icechunk.Repository``), or a store already
        located.
    storage_options : mapping, optional
        Passed to fsspec for URLs. A located store keeps its own: passing others with it
        is refused.

    Raises
    ------
    InputError
        For anything that is not a path or a URL fsspec knows, or options that contradict
        those of a located store.
    """
    if isinstance(store, Store):
        if storage_options and dict(storage_options) != dict(store.options):
            raise InputError(
                f"{store.url} was located with other storage options: pass them to locate()"
            )
        return store
    for kind in Store.__subclasses__():
        claimed = kind.claim(store, storage_options)
        if claimed is not None:
            return claimed
    import fsspec

    try:
        url = os.fspath(store)
    except TypeError:
        url = None
    if not isinstance(url, str) or not url.strip():
        raise InputError(f"invalid store {store!r}: expected a path or an fsspec URL")
    try:
        fs, root = fsspec.core.url_to_fs(url, **(storage_options or {}))
    except (ValueError, ImportError) as exc:  # an unknown protocol, a missing fsspec plugin
        raise InputError(f"invalid store {url!r}: {exc}") from exc
    return Store(url, fs, str(root).rstrip("/"), dict(storage_options or {}))
