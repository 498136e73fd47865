"""What a build or an update did: one :class:`ObjectResult` per object, gathered in a
:class:`BuildReport`."""

from __future__ import annotations

from collections import Counter
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
        diaSourceIds asked for by this operation whose cutouts the service could not give:
        they are left out of the cube, listed in its ``missing_diaSourceIds``, and asked
        again by a later update.
    reasons : tuple of str
        Why, aligned with ``missing``: ``no_cutout``, ``service_error`` or ``decode_error``
        (see :mod:`~finkcube.pipeline.completeness`); empty when not known.
    filled : int
        Sources the cube lacked that this update asked again and filled in.
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
    reasons: tuple[str, ...] = ()
    filled: int = 0

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

    @property
    def left_out(self) -> int:
        """How many sources this build or update asked for and left out (see ``missing``)."""
        return sum(len(r.missing) for r in self.results)

    def summary(self) -> str:
        """Return a one-line human summary, left-out sources counted by reason.

        Examples
        --------
        >>> BuildReport("s.zarr", [ObjectResult(1, "built", 3, 3)], 1.5).summary()
        's.zarr: 1 built, 0 updated, 0 skipped, 0 unchanged, 0 failed; 3 epochs added, 0 sources left out in 1.5 s'
        >>> done = ObjectResult(1, "updated", 4, 2, (7, 8), reasons=("no_cutout",) * 2, filled=1)
        >>> BuildReport("s.zarr", [done], 2.0).summary()
        's.zarr: 0 built, 1 updated, 0 skipped, 0 unchanged, 0 failed; 2 epochs added, 1 left-out source filled, 2 sources left out (2 no_cutout) in 2.0 s'
        """  # noqa: E501
        added = sum(r.added for r in self.results)
        parts = ", ".join(
            f"{self.count(s)} {s}" for s in ("built", "updated", "skipped", "unchanged", "failed")
        )
        facts = [f"{added} epochs added"]
        filled = sum(r.filled for r in self.results)
        if filled:
            facts.append(f"{filled} left-out source{'s' if filled > 1 else ''} filled")
        left = self.left_out
        facts.append(f"{left} source{'' if left == 1 else 's'} left out")
        reasons = Counter(reason for r in self.results for reason in r.reasons)
        if reasons:
            facts[-1] += " (" + ", ".join(f"{n} {why}" for why, n in sorted(reasons.items())) + ")"
        return f"{self.store}: {parts}; {', '.join(facts)} in {self.seconds:.1f} s"
