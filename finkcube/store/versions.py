"""Versions of a cube: which one a reader reads, and how a rewrite replaces one by another.

A cube's *version* is the content its group ``zarr.json`` describes; readers identify it by
that document (:func:`fingerprint`: its attributes and consolidated metadata) and check,
after every read of its files, that the document is still the same (:func:`check_unchanged`).
Every writer deletes a version's ``zarr.json`` *before* any other of its files, so a document
still there after a read proves that none of the files read had been replaced or deleted.

A rewrite (:func:`rewrite`) first writes the new version whole, its ``zarr.json`` last, under
a staging name inside the store, ``.finkcube-staging/<ID>.<time>-<random>/`` (one per writer;
plain xarray and zarr never take it for a group: it is no object id, and it exists only
while a write is in flight). It then promotes it (:func:`promote`): the live group's
``zarr.json`` is deleted first (from then on plain ``xr.open_zarr`` errors instead of reading
a mix), the files replaced, stale ones deleted, the ``zarr.json`` written last, and the
staged copy deleted. While the live group has no complete ``zarr.json``, finkcube's readers
read its newest complete staged copy (:func:`settle`), so a store reads as the old version
until the staged copy is complete and as the new one from then on. :func:`repair` puts right
what a crash left: it promotes the newest complete staged copy of a group whose live
``zarr.json`` is gone, and deletes every other copy (the live group was never touched).
"""

from __future__ import annotations

import errno
import functools
import hashlib
import os
import socket
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from finkcube.errors import StoreError
from finkcube.store.layout import CONSOLIDATED, loads_or_none, marked_complete
from finkcube.store.location import META, STAGING, Store

__all__ = [
    "RETRIES",
    "STAGING",
    "CubeChangedError",
    "Version",
    "check_unchanged",
    "delete_versions",
    "discard_older",
    "fingerprint",
    "promote",
    "promote_staged",
    "repair",
    "retrying",
    "rewrite",
    "settle",
    "stage_name",
]

#: How the files :meth:`~finkcube.store.location.Store.replace` writes aside begin.
ASIDE = "partial-"
#: How many times a reader opens a cube again when it was rewritten while being read.
RETRIES = 5
#: How many times a write re-uploads a cube whose arrays went missing on the way.
_UPLOADS = 3


_T = TypeVar("_T")


class CubeChangedError(StoreError):
    """A cube was rewritten while being read: open it again (its data would mix versions)."""


def retrying(action: Callable[[], _T]) -> _T:
    """``action()``, done again while it raises CubeChangedError, at most :data:`RETRIES` times."""
    for _ in range(RETRIES - 1):
        try:
            return action()
        except CubeChangedError:
            continue
    return action()


@dataclass(frozen=True)
class Version:
    """One complete version of a cube: where its files are, and its group metadata.

    Attributes
    ----------
    group : str
        The object's group (its decimal diaObjectId).
    prefix : str
        The folder of its files, from the store's root: ``group`` itself, or a staged copy.
    meta : dict
        Its group ``zarr.json`` (consolidated metadata included).
    """

    group: str
    prefix: str
    meta: dict[str, Any]

    @property
    def head(self) -> str:
        """The key of its group ``zarr.json``."""
        return f"{self.prefix}/{META}"

    @functools.cached_property
    def check(self) -> tuple[str, str, bytes]:
        """What :func:`check_unchanged` needs: the group, the head's key, the fingerprint
        (made once: every read of the version checks against it)."""
        return self.group, self.head, fingerprint(self.meta)


def fingerprint(meta: Mapping[str, Any] | None) -> bytes:
    """What identifies a version: its attributes and its arrays' metadata, canonical JSON.

    The same whether the metadata was read from the group's ``zarr.json`` or from the root's
    consolidated metadata (which copies the same array documents).
    """
    if not meta:
        return b""
    members = (meta.get(CONSOLIDATED) or {}).get("metadata") or {}
    doc = {"attributes": meta.get("attributes", {}), "members": members}
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


def check_unchanged(where: Store, check: tuple[str, str, bytes]) -> None:
    """CubeChangedError unless the version read is still there, unchanged (read after it)."""
    group, head, expected = check
    raw = where.read_many([head]).get(head)
    if fingerprint(loads_or_none(raw)) != expected:
        raise CubeChangedError(
            f"{where.url}: cube {group} was rewritten while being read; open it again"
        )


def _copies(where: Store) -> dict[str, list[str]]:
    """The staged copies' folder names by group, oldest first (names sort by time)."""
    copies: dict[str, list[str]] = {}
    for name in sorted(where.names_in(STAGING)):
        group, _, stamp = name.partition(".")
        copies.setdefault(group if stamp else "", []).append(name)
    return copies


def settle(where: Store, groups: Mapping[str, dict[str, Any] | None]) -> dict[str, Version]:
    """The version each group reads as: the live one if complete, else its newest complete
    staged copy (a rewrite cut short after staging); groups with neither are left out.

    The staging folder is listed only when a group is not complete.
    """
    found = {g: Version(g, g, meta) for g, meta in groups.items() if meta and marked_complete(meta)}
    pending = [g for g in groups if g not in found]
    copies = _copies(where) if pending else {}
    heads = where.read_many(
        f"{STAGING}/{name}/{META}" for g in pending for name in copies.get(g, ())
    )
    for group in pending:
        for name in reversed(copies.get(group, [])):
            meta = loads_or_none(heads.get(f"{STAGING}/{name}/{META}"))
            if meta is not None and marked_complete(meta):
                found[group] = Version(group, f"{STAGING}/{name}", meta)
                break
    return found


def _swap(
    where: Store,
    group: str,
    keys: Collection[str],
    put: Callable[[], None],
    put_head: Callable[[], None],
    *,
    existed: bool,
) -> None:
    """Replace the live group's files by ``keys`` (``put``), its ``zarr.json`` last (``put_head``).

    With ``existed``, the old ``zarr.json`` is deleted first and the old files that the new
    version lacks are deleted before the new ``zarr.json`` is written. Arrays that went
    missing on the way (another process deleting the cube meanwhile) are put again.
    """
    head_key = f"{group}/{META}"
    old: set[str] = set()
    if existed:
        where.remove_files([head_key])
        old = set(where.files_under(group))
    arrays = [key for key in keys if key.endswith(f"/{META}")]
    for attempt in range(_UPLOADS):
        put()
        if len(where.read_many(arrays)) == len(arrays):
            break
        if attempt == _UPLOADS - 1:
            raise StoreError(
                f"{where.url}: cube {group} lost arrays while being written (was it deleted "
                "or written by another process at the same time?); write it again"
            )
    where.remove_files(sorted(old - set(keys) - {head_key}))
    put_head()


def promote(where: Store, group: str, files: Mapping[str, bytes], *, existed: bool) -> None:
    """Make ``files`` (keyed ``group/...``) the live group, its ``zarr.json`` last (with
    ``existed``, the old version's ``zarr.json`` deleted first)."""
    head_key = f"{group}/{META}"
    head = files[head_key]
    rest = {key: data for key, data in files.items() if key != head_key}
    _swap(
        where,
        group,
        rest.keys(),
        lambda: where.upload(rest),
        lambda: where.replace(head_key, head),
        existed=existed,
    )


def promote_staged(where: Store, group: str, prefix: str, *, existed: bool) -> None:
    """Make the complete staged copy at ``prefix`` the live group, copying its files into
    place (:meth:`~finkcube.store.location.Store.copy_files`: hard links on disk), its
    ``zarr.json`` last. The staged copy is left whole: a crash midway is promoted again."""
    moved = {
        key: group + key[len(prefix) :]
        for key in where.files_under(prefix)
        if not key.endswith(".partial")  # what a killed zarr write left aside
    }
    head = f"{prefix}/{META}"
    if moved.pop(head, None) is None:
        raise FileNotFoundError(f"{where.url}: {head} is gone")
    _swap(
        where,
        group,
        moved.values(),
        lambda: where.copy_files(moved),
        lambda: where.copy_files({head: f"{group}/{META}"}),
        existed=existed,
    )


def _host() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def stage_name(group: str) -> str:
    """A new staged copy's folder name, under :data:`STAGING`: ``<group>.<time>-<random>-
    <host>-<pid>`` (one per writer; names sort by time; the writer's machine and process
    tell :func:`repair` whether it may still be writing)."""
    return f"{group}.{time.time_ns():020d}-{uuid.uuid4().hex[:12]}-{_host()}-{os.getpid()}"


def _in_flight(name: str) -> bool:
    """Whether the staged copy ``name`` may still be in use by its writer: another process
    of this machine that is alive (it fills a large cube's copy chunk by chunk, then
    promotes any copy itself). A writer on another machine cannot be told: False."""
    parts = name.split("-")
    host, pid = (parts[-2], parts[-1]) if len(parts) >= 3 else ("", "")
    if host != _host() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def discard_older(where: Store, group: str, name: str) -> None:
    """Delete the group's staged copies up to ``name`` (this writer's and those crashed
    writers left); newer ones, and older ones of live writers of this machine
    (:func:`_in_flight`), belong to writers still in flight and are left to them."""
    for other in _copies(where).get(group, []):
        if other == name or (other < name and not _in_flight(other)):
            _drop(where, f"{STAGING}/{other}")
    _drop_staging_if_empty(where)


def _drop(where: Store, prefix: str) -> None:
    """Delete a version's folder, its ``zarr.json`` first (readers then see it is gone).

    A folder another writer still adds to is left to it (it deletes its own copy, or it
    promotes it as the group's newest version).
    """
    where.remove_files([f"{prefix}/{META}"])
    try:
        where.remove(prefix)
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.ENOENT):
            raise


def _drop_staging_if_empty(where: Store) -> None:
    """Remove the empty staging folder, which plain zarr would list (object stores have none)."""
    if where.remote:
        return
    try:
        if where.local:
            os.rmdir(where.path(STAGING))
        elif not where.names_in(STAGING):
            where.fs.rmdir(where.path(STAGING))
    except (OSError, ValueError):  # not empty (another write in flight), or already gone
        pass


def rewrite(where: Store, group: str, files: Mapping[str, bytes]) -> None:
    """Replace a live group by ``files``: stage the new version whole, then promote it.

    Staged copies of the group older than this one (left by crashed writers) are deleted
    afterwards; newer ones belong to writers still in flight and are left to them.
    """
    name = stage_name(group)
    prefix = f"{STAGING}/{name}"
    staged = {prefix + key[len(group) :]: data for key, data in files.items()}
    head = staged.pop(f"{prefix}/{META}")
    where.upload(staged)
    where.replace(f"{prefix}/{META}", head)
    promote(where, group, files, existed=True)
    discard_older(where, group, name)


def delete_versions(where: Store, group: str) -> None:
    """Delete a group, its ``zarr.json`` first, and every staged copy of it."""
    _drop(where, group)
    copies = _copies(where)
    for name in copies.get(group, []):
        _drop(where, f"{STAGING}/{name}")
    if copies:
        _drop_staging_if_empty(where)


def repair(where: Store) -> list[str]:
    """Put right what crashed writes left; return the groups promoted.

    A group whose live ``zarr.json`` is missing or incomplete gets its newest complete
    staged copy promoted (idempotent: a crash during it is repaired the same way); every
    other staged copy is deleted (its writer died before touching the live group), and so
    is every file a killed :meth:`~finkcube.store.location.Store.replace` left aside.
    Called by :func:`~finkcube.store.init_store` (resume) and
    :func:`~finkcube.store.finalize_store`.

    A copy whose writer is a live process of this machine is its writer's: it is neither
    deleted nor promoted (the writer may be promoting it at this instant, the live
    ``zarr.json`` deleted; a second promotion would delete the one the writer puts back).
    A writer on another machine cannot be told from a crashed one: a repair there may
    promote or delete its copy under it, and that cube may be left with no version until
    it is written again (one writer at a time per store across machines).
    """
    copies = _copies(where)
    if not copies:
        _drop_staging_if_empty(where)
        return []
    groups = [g for g in copies if g.isdigit()]
    live = where.read_many(f"{g}/{META}" for g in groups)
    promoted = []
    for group in groups:
        if marked_complete(loads_or_none(live.get(f"{group}/{META}"))):
            continue
        if any(map(_in_flight, copies[group])):
            continue  # its writer is promoting its copy: a second promotion would undo it
        for name in reversed(copies[group]):
            prefix = f"{STAGING}/{name}"
            head = where.read_many([f"{prefix}/{META}"]).get(f"{prefix}/{META}")
            if not marked_complete(loads_or_none(head)):
                continue
            try:
                promote_staged(where, group, prefix, existed=True)
            except FileNotFoundError:
                continue  # its writer deleted it meanwhile (head first): files may lack
            promoted.append(group)
            break
    for names in copies.values():
        for name in names:
            if name.startswith(ASIDE):  # a file a killed Store.replace wrote aside
                where.remove_files([f"{STAGING}/{name}"])
            elif not _in_flight(name):
                _drop(where, f"{STAGING}/{name}")
    _drop_staging_if_empty(where)
    return promoted
