"""An Icechunk repository as a finkcube store: each build, update or ingest one commit.

`Icechunk <https://icechunk.io>`_ is a transactional storage engine for Zarr: a store is a
repository of snapshots, writers work in a session and publish everything at once with a
commit, and readers open a snapshot that never changes under them. finkcube reads and writes
the same Zarr documents and chunks as in a plain store, through the repository's zarr
``Store`` (``session.store``), so that every function of :mod:`finkcube.store` works on it:

- a writer (``build``, ``update``, ``ingest``) opens one writable session on the branch at
  its first write and commits it in :func:`~finkcube.store.finalize_store`: readers never see
  half of a run, a crash leaves the branch as it was;
- two writers cannot silently overwrite each other: the second commit is rebased on the
  first when they touched different nodes and refused otherwise
  (:class:`~finkcube.errors.StoreError`, "run it again"); finalize_store rewrites the root
  of every store, so two runs into one repository at once conflict there, by design;
- a reader pins the branch's snapshot when it locates the store: a lazy cube reads that
  snapshot even after later commits.

Spell such a store ``icechunk://PATH`` (a local repository) or
``icechunk+s3://BUCKET/PREFIX`` (``storage_options`` are passed to
:func:`icechunk.s3_storage`: ``endpoint_url``, ``region``, ``access_key_id``, ...), or pass an
:class:`icechunk.Repository`. A missing repository is created at the first write. The
repository is written from one process: a dask.distributed ingest or build into it is
refused. Needs the ``icechunk`` extra (``pip install finkcube[icechunk]``).

Icechunk stores only Zarr keys, so the store is addressed by key (``42/zarr.json``); its
sessions' coroutines run on zarr-python's own event loop (``zarr.core.sync.sync``), as zarr's
synchronous API runs those of every store.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

from finkcube.errors import InputError, StoreError
from finkcube.store.location import META, Store

__all__ = ["SCHEMES", "IcechunkStore", "is_icechunk", "locate_icechunk"]

#: The URL schemes of an Icechunk store: a local repository, one on S3.
SCHEMES = ("icechunk://", "icechunk+s3://")

_T = TypeVar("_T")


def _run(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run one of the session store's coroutines on zarr-python's event loop."""
    from zarr.core.sync import sync

    return sync(coroutine)


def _buffer(data: bytes) -> Any:
    from zarr.core.buffer import default_buffer_prototype

    return default_buffer_prototype().buffer.from_bytes(data)


def _depth_first_metadata(key: str) -> tuple[int, int]:
    """Upload order: node documents before chunks, parents before children (Icechunk
    accepts a chunk only under an array it already knows)."""
    return (0 if key.endswith(META) else 1, key.count("/"))


@dataclass
class _Sessions:
    """The sessions of one located repository: the pinned reader, the writer once opened."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    reader: Any = None
    writer: Any = None


@dataclass(frozen=True, slots=True)
class IcechunkStore(Store):
    """A finkcube store kept in an Icechunk repository (see the module's documentation).

    Attributes
    ----------
    storage : icechunk.Storage
        Where the repository is.
    branch : str
        The branch read and committed to (``"main"``).
    """

    storage: Any = field(default=None, compare=False)
    branch: str = "main"
    repository: Any = field(default=None, compare=False)
    sessions: _Sessions = field(default_factory=_Sessions, compare=False)

    @classmethod
    def claim(cls, store: object, storage_options: Mapping[str, Any] | None) -> Store | None:
        """The store of an ``icechunk://`` URL or an ``icechunk.Repository``, else None."""
        return locate_icechunk(store, storage_options) if is_icechunk(store) else None

    def __reduce__(self) -> Any:
        raise InputError(
            f"{self.url}: an Icechunk store is written from one process; "
            "run without --scheduler (or write a plain store and copy it)"
        )

    def path(self, *parts: str) -> str:
        """The key of a node or chunk (Icechunk has no root path)."""
        return "/".join(parts)

    @property
    def local(self) -> bool:
        """Never plain files: every access goes through the repository's session."""
        return False

    @property
    def shared_writes(self) -> bool:
        """No: one writable session, committed by the run that opened it."""
        return False

    @property
    def consolidates(self) -> bool:
        """No: Icechunk's store refuses consolidated metadata (its snapshot holds it all)."""
        return False

    @property
    def streams(self) -> bool:
        """False: every cube is written from memory into the session (a commit publishes
        it whole, so nothing is gained by staging it in the repository)."""
        return False

    @property
    def remote(self) -> bool:
        """No folders to tidy, as on an object store."""
        return True

    def _repo(self, *, create: bool) -> Any:
        import icechunk

        if self.repository is not None:
            return self.repository
        if create:
            repo = icechunk.Repository.open_or_create(self.storage)
        elif icechunk.Repository.exists(self.storage):
            repo = icechunk.Repository.open(self.storage)
        else:
            return None
        object.__setattr__(self, "repository", repo)
        return repo

    def _store(self, *, write: bool) -> Any:
        """The session store to use: the writer's once opened (a run reads its own writes),
        else the reader pinned at the first read; None for a repository not created yet."""
        with self.sessions.lock:
            if self.sessions.writer is None and write:
                self.sessions.writer = self._repo(create=True).writable_session(self.branch)
            if self.sessions.writer is not None:
                return self.sessions.writer.store
            if self.sessions.reader is None:
                repo = self._repo(create=False)
                if repo is None:
                    return None
                self.sessions.reader = repo.readonly_session(branch=self.branch)
            return self.sessions.reader.store

    def zarr(self, *, read_only: bool, key: str = "") -> Any:
        """The session's zarr store (a repository is created by the first write); of the
        root only (cubes are never staged in a repository: :attr:`streams`)."""
        if key:
            raise ValueError("an Icechunk store has no zarr store of a folder")
        found = self._store(write=not read_only)
        if found is None:
            raise StoreError(f"{self.url}: no Icechunk repository there yet")
        return found

    async def _get_many(self, store: Any, keys: list[str]) -> dict[str, bytes]:
        import asyncio

        from zarr.core.buffer import default_buffer_prototype

        prototype = default_buffer_prototype()
        found = await asyncio.gather(*(store.get(k, prototype) for k in keys))
        return {k: v.to_bytes() for k, v in zip(keys, found, strict=True) if v is not None}

    def read_many(self, parts: Iterable[str]) -> dict[str, bytes]:
        """Read many keys at once; missing ones left out."""
        keys = list(parts)
        store = self._store(write=False)
        if store is None or not keys:
            return {}
        return _run(self._get_many(store, keys))

    def read_json(self, *parts: str) -> dict[str, Any] | None:
        """A node document, or None when there is none."""
        key = self.path(*parts)
        raw = self.read_many([key]).get(key)
        if raw is None:
            return None
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise StoreError(f"{self.url}: {key} is not JSON ({exc})") from exc

    async def _set_many(self, store: Any, files: Mapping[str, bytes]) -> None:
        import asyncio

        documents = sorted((k for k in files if k.endswith(META)), key=_depth_first_metadata)
        for key in documents:  # parents first: Icechunk checks a node's parent
            await store.set(key, _buffer(files[key]))
        chunks = [k for k in files if not k.endswith(META)]
        await asyncio.gather(*(store.set(k, _buffer(files[k])) for k in chunks))

    def upload(self, files: Mapping[str, bytes]) -> None:
        """Put many keys into the writable session (documents first, then chunks)."""
        if files:
            _run(self._set_many(self._store(write=True), files))

    def replace(self, key: str, data: bytes) -> None:
        """Put one key (a session makes every write atomic at commit)."""
        self.upload({key: data})

    def copy_files(self, pairs: Mapping[str, str]) -> None:
        """Copy keys, each ``source: target``, through the writable session."""
        found = self.read_many(pairs)
        self.upload({target: found[source] for source, target in pairs.items()})

    async def _keys(self, store: Any, node: str) -> list[str]:
        """Every key under a node ("" for the root); none when there is no such node
        (Icechunk lists a node's keys only: its prefix is the node's path, not a string)."""
        if node and not await store.exists(f"{node}/{META}"):
            return []
        keys = [key async for key in store.list_prefix(node)]
        return [key for key in keys if not node or key.startswith(f"{node}/")]

    def files_under(self, key: str) -> list[str]:
        """The keys under a node; none when it is absent."""
        store = self._store(write=False)
        if store is None:
            return []
        return _run(self._keys(store, key))

    async def _names(self, store: Any, node: str) -> list[str]:
        if node and not await store.exists(f"{node}/{META}"):
            return []
        return [name.rstrip("/") async for name in store.list_dir(node)]

    def names_in(self, key: str) -> list[str]:
        """The names of a node's children (and of its documents)."""
        store = self._store(write=False)
        if store is None:
            return []
        return _run(self._names(store, key))

    def exists(self, key: str = "") -> bool:
        """Whether a node or a node's document exists (any node at all for "")."""
        if not key:
            return bool(self.names_in(""))
        return bool(self.read_many([key if key.endswith(META) else f"{key}/{META}"]))

    async def _delete(self, store: Any, keys: list[str]) -> None:
        for key in keys:
            with contextlib.suppress(KeyError, FileNotFoundError):
                await store.delete(key)

    def remove_files(self, keys: Iterable[str]) -> None:
        """Delete keys, in the order given; missing ones are ignored."""
        wanted = list(keys)
        if wanted and self._store(write=False) is not None:
            _run(self._delete(self._store(write=True), wanted))

    def remove(self, key: str) -> None:
        """Delete a node and all it holds; nothing happens if there is none."""
        if self._store(write=False) is None:
            return
        keys = self.files_under(key)
        if keys:
            _run(self._delete(self._store(write=True), sorted(keys, reverse=True)))

    def is_folder(self, key: str = "") -> bool:
        """Every node can hold others."""
        return True

    async def _sizes(self, store: Any, keys: list[str]) -> dict[str, int]:
        import asyncio

        found = await asyncio.gather(*(store.getsize(key) for key in keys))
        return dict(zip(keys, (int(size) for size in found), strict=True))

    def sizes(self, key: str = "") -> dict[str, int]:
        """The size in bytes of every key under a node (the whole store for "")."""
        store = self._store(write=False)
        if store is None:
            return {}
        return _run(self._sizes(store, _run(self._keys(store, key))))

    def clear(self) -> None:
        """Delete every node of the store (in the writer's session)."""
        self.remove("")

    def refuse_unusable(self) -> None:
        """Nothing to check before a build: a missing repository is created."""

    def children(self) -> list[str]:
        """The names of the root's children that are object ids, ascending."""
        names = self.names_in("")
        return sorted((n for n in names if n.isdigit() and n == str(int(n))), key=int)

    @property
    def snapshot(self) -> str | None:
        """The snapshot this store reads: pinned at its first read, moved by its commits."""
        self._store(write=False)
        reader = self.sessions.reader
        return None if reader is None else str(reader.snapshot_id)

    def tags(self) -> set[str]:
        """The repository's tags (none before it is created)."""
        repo = self._repo(create=False)
        return set(repo.list_tags()) if repo is not None else set()

    def tag(self, name: str, snapshot: str) -> None:
        """Name a snapshot for good (Icechunk's tags never move)."""
        self._repo(create=False).create_tag(name, snapshot_id=snapshot)

    def commit(self, message: str) -> str | None:
        """Commit the writer's changes, rebased on commits made meanwhile when they touch
        other nodes; the new snapshot's id, or None when there was nothing to commit.

        Raises
        ------
        StoreError
            When another writer changed the same nodes meanwhile: nothing of this run is
            committed, and running it again continues from the other's result.
        """
        import icechunk

        with self.sessions.lock:
            writer, self.sessions.writer = self.sessions.writer, None
            if writer is None or not writer.has_uncommitted_changes:
                return None
            try:
                snapshot = writer.commit(message, rebase_with=icechunk.ConflictDetector())
            except (icechunk.ConflictError, icechunk.RebaseFailedError) as exc:
                raise StoreError(
                    f"{self.url}: another writer changed the same cubes (or the store's root) "
                    f"while this one ran, and nothing of this run was committed "
                    f"({' '.join(str(exc).split())[:160]}); run it again"
                ) from exc
            self.sessions.reader = self._repo(create=False).readonly_session(snapshot_id=snapshot)
            return str(snapshot)


def is_icechunk(store: object) -> bool:
    """Whether ``store`` names an Icechunk repository (a URL of :data:`SCHEMES` or one)."""
    if isinstance(store, str):
        return store.startswith(SCHEMES)
    module = type(store).__module__ or ""
    return module.split(".")[0] == "icechunk" and type(store).__name__ == "Repository"


def locate_icechunk(store: Any, storage_options: Mapping[str, Any] | None) -> IcechunkStore:
    """The :class:`IcechunkStore` of an ``icechunk://`` URL or an ``icechunk.Repository``.

    Raises
    ------
    InputError
        When the ``icechunk`` package is missing, or for a URL without a path.
    """
    try:
        import icechunk
    except ImportError as exc:
        raise InputError(
            f"{store}: Icechunk stores need the icechunk package: pip install 'finkcube[icechunk]'"
        ) from exc
    options = dict(storage_options or {})
    if not isinstance(store, str):
        return IcechunkStore(repr(store), None, "", options, storage=store.storage,
                             repository=store)  # fmt: skip
    scheme, _, rest = store.partition("://")
    rest = rest.rstrip("/")
    if not rest:
        raise InputError(f"invalid store {store!r}: give the repository's path after {scheme}://")
    if scheme == "icechunk":
        if options:
            raise InputError(f"{store}: a local Icechunk repository takes no storage options")
        storage = icechunk.local_filesystem_storage(rest)
    else:
        bucket, _, prefix = rest.partition("/")
        try:
            storage = icechunk.s3_storage(bucket=bucket, prefix=prefix or None, **options)
        except TypeError as exc:
            raise InputError(f"{store}: storage options for icechunk.s3_storage: {exc}") from exc
    return IcechunkStore(store, None, "", options, storage=storage)
