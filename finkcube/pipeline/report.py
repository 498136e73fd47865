"""What a build or an update did: one :class:`ObjectResult` per object, gathered in a
:class:`BuildReport`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["UNKNOWN_OBJECT", "BuildReport", "ObjectResult", "Status"]

Status = Literal["built", "skipped", "updated", "unchanged", "failed"]
#: Why an object the service lists no source for fails.
UNKNOWN_OBJECT = "the service lists no source for it (unknown diaObjectId?)"


@dataclass(frozen=True, slots=True)
class ObjectResult:
    """What a build or update did to one object.

    Attributes
    ----------
    object_id : int
        The diaObjectId.
    status : {"built", "skipped", "updated", "unchanged", "failed"}
        ``skipped``: already complete in the store; ``unchanged``: no new source.
    epochs : int
        Epochs in the object's cube after the operation.
    added : int
        Epochs added by this operation.
    missing : tuple of int
        diaSourceIds whose cutouts the service could not give.
    error : str or None
        Why the object failed, when it did.
    not_found : bool
        The object failed because the service lists no source for it (an unknown id: the
        user's to fix, not a failure of the service).
    """

    object_id: int
    status: Status
    epochs: int = 0
    added: int = 0
    missing: tuple[int, ...] = ()
    error: str | None = None
    not_found: bool = False

    @classmethod
    def unknown(cls, object_id: int) -> ObjectResult:
        """The result of an object the service lists no source for.

        Examples
        --------
        >>> ObjectResult.unknown(12).not_found
        True
        """
        return cls(object_id, "failed", error=UNKNOWN_OBJECT, not_found=True)


@dataclass(slots=True)
class BuildReport:
    """The outcome of :func:`~finkcube.build_store` or :func:`~finkcube.update_store`."""

    store: str
    results: list[ObjectResult] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: Status) -> int:
        """Return how many objects ended with ``status``."""
        return sum(r.status == status for r in self.results)

    @property
    def failed(self) -> list[ObjectResult]:
        """The objects that failed."""
        return [r for r in self.results if r.status == "failed"]

    def summary(self) -> str:
        """Return a one-line human summary.

        Examples
        --------
        >>> BuildReport("s.zarr", [ObjectResult(1, "built", 3, 3)], 1.5).summary()
        's.zarr: 1 built, 0 updated, 0 skipped, 0 unchanged, 0 failed; 3 epochs added in 1.5 s'
        """
        added = sum(r.added for r in self.results)
        parts = ", ".join(
            f"{self.count(s)} {s}" for s in ("built", "updated", "skipped", "unchanged", "failed")
        )
        return f"{self.store}: {parts}; {added} epochs added in {self.seconds:.1f} s"
