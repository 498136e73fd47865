"""How much of a reply the client accepts: body sizes, image sides, record counts. Pure.

A server (or whatever answers in its place) can send a reply of any size or shape; the
client refuses one past what a real reply of the Fink LSST API can reach before it allocates
for it, so that a junk or hostile reply ends in an error, never in a process out of memory.
The bounds:

- a cutout reply body: :data:`MAX_CUTOUT_BYTES` (8 MiB). A ``kind=All`` array reply of a
  102-pixel stamp is under 1 MB of JSON; a FITS file of one (data, variance, mask, a PSF
  image, headers) about 200 kB; a PNG less.
- a sources reply body: :data:`MAX_SOURCES_BYTES` (256 MiB). A record of every column is a
  few kB of JSON, and one call returns up to 10,000 of them per object: this holds a few
  objects of 10,000 sources with every column, or many more with the columns finkcube asks
  for by default. Pass ``max_sources_bytes`` to :class:`~finkcube.service.client.FinkClient`
  (or ask fewer objects or columns per call) past that.
- the records of a sources reply: :data:`MAX_ROWS_PER_OBJECT` per object asked.
- a cutout image: square, side :data:`~finkcube.names.MIN_SIDE` to
  :data:`~finkcube.names.MAX_SIDE` in a FITS file (at most ``MAX_SIDE`` in an array reply);
  a PSF image: side at most :data:`MAX_PSF_SIDE` (those seen are 41 to 55 pixels).

A reply past a bound raises :class:`OversizeReplyError`, which the client does not retry:
the same request would get the same reply.
"""

from __future__ import annotations

from typing import Final

from finkcube.errors import DecodeError, InputError

__all__ = [
    "ERROR_BODY_BYTES",
    "MAX_CUTOUT_BYTES",
    "MAX_PSF_SIDE",
    "MAX_ROWS_PER_OBJECT",
    "MAX_SOURCES_BYTES",
    "OversizeReplyError",
    "check_cap",
]

#: The most bytes of a cutout reply body (array, FITS or PNG).
MAX_CUTOUT_BYTES: Final = 8 * 1024 * 1024
#: The most bytes of a sources reply body.
MAX_SOURCES_BYTES: Final = 256 * 1024 * 1024
#: The most records a sources reply holds per object asked (the service's own limit).
MAX_ROWS_PER_OBJECT: Final = 10_000
#: The largest side of a PSF image accepted in a FITS cutout file.
MAX_PSF_SIDE: Final = 256
#: How much of an error reply's body (not a success) is read: enough to quote it.
ERROR_BODY_BYTES: Final = 64 * 1024


class OversizeReplyError(DecodeError):
    """A reply larger than any real reply can be: refused, and not asked again."""


def check_cap(name: str, value: object) -> int:
    """``value`` as a byte cap, or :class:`~finkcube.errors.InputError` naming ``name``.

    Examples
    --------
    >>> check_cap("max_cutout_bytes", 1024)
    1024
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"invalid {name} {value!r}: expected a positive integer of bytes")
    return value
