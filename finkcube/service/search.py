"""The endpoints that find objects, as methods of :class:`~.client.FinkClient`.

:class:`SearchMethods` is a mixin of the client: cone search (``/api/v1/conesearch``), Fink
tags (``/api/v1/tags``), names (``/api/v1/resolver``), diaObject aggregates
(``/api/v1/objects``) and forced photometry (``/api/v1/fp``). Each is one request through
the client's exchange (retries, deadline, the ``max_sources_bytes`` cap on the body) and
returns an astropy ``Table`` built like :meth:`~.client.FinkClient.sources` does:

* column names lose their family prefix (``r:``, ``f:``, ``v:``, ``d:``); when two columns
  share a bare name (``r:x`` and ``f:x``), the first served keeps the bare name and the
  later ones keep their prefixed name;
* ids (``diaObjectId``, ``diaSourceId``, ``diaForcedSourceId``, ``visit``) are exact int64;
  missing values are masked, and so is the text ``"nan"`` (what a server on pandas 2 sends
  for a null string or boolean).

Arguments are checked before anything is sent (:class:`~finkcube.errors.InputError`); a
400 of the service (an unknown tag, a refused cone) is a
:class:`~finkcube.errors.BadRequestError` naming the search, on one line.
:func:`object_ids` reduces any of these tables to its diaObjectIds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from finkcube.errors import InputError
from finkcube.names import (
    CONESEARCH_PATH,
    FP_PATH,
    OBJECT_ID,
    OBJECTS_PATH,
    RESOLVER_PATH,
    RESOLVERS,
    SEPARATION_COLUMN,
    TAGS_PATH,
    TIME_COLUMN,
)
from finkcube.service.decode import decode_json, decode_source_records
from finkcube.service.payloads import (
    canonical,
    check_count,
    cone_centre,
    cone_radius,
    date_fields,
    objects_request,
    request_columns,
)
from finkcube.service.payloads import object_ids as checked_ids
from finkcube.service.replies import records_table

if TYPE_CHECKING:
    from astropy.coordinates import SkyCoord
    from astropy.table import Table
    from astropy.units import Quantity

    from finkcube.service.exchange import Exchange

__all__ = ["SearchMethods", "object_ids"]

_FIRST_SEEN = "f:firstDiaSourceMjdTaiFink"
_TIME = "r:" + TIME_COLUMN


def object_ids(table: Table) -> list[int]:
    """The diaObjectIds of a search table: unique, in the order of its rows.

    Examples
    --------
    >>> from astropy.table import Table
    >>> object_ids(Table({"diaObjectId": [3, 1, 3], "band": ["g", "r", "i"]}))
    [3, 1]
    >>> object_ids(Table())
    []
    """
    if OBJECT_ID not in table.colnames:
        return []
    column = table[OBJECT_ID]
    values = column.tolist() if not hasattr(column, "mask") else column.filled(0).tolist()
    return [int(v) for v in dict.fromkeys(values) if v]


def _null_nan(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records with the text ``"nan"`` (pandas 2's null string or boolean) as None."""
    return [{k: (None if v == "nan" else v) for k, v in r.items()} for r in records]


def _table(records: list[dict[str, Any]], asked: list[str] | None) -> Table:
    names = list(dict.fromkeys(key for record in records for key in record))
    if not names and asked:
        names = asked
    return records_table(_null_nan(records), names)


def _columns(columns: Iterable[str] | None, *needed: str) -> list[str] | None:
    wanted = request_columns(columns)
    return None if wanted is None else list(dict.fromkeys((*wanted, *needed)))


class SearchMethods:
    """The search endpoints of :class:`~.client.FinkClient` (a mixin: it sends through
    the client's exchange, capped by ``max_sources_bytes``)."""

    url: str
    max_sources_bytes: int
    _exchange: Exchange

    def _rows(
        self,
        path: str,
        fields: dict[str, Any],
        what: str,
        *,
        method: str = "POST",
        most: int | None = None,
    ) -> list[dict[str, Any]]:
        decode: Callable[[bytes], list[dict[str, Any]]] = lambda b: decode_source_records(  # noqa: E731
            b, max_records=most
        )
        return self._exchange.post(
            self.url + path,
            fields,
            decode,
            what,
            ("max_sources_bytes", self.max_sources_bytes),
            method,
        )

    def conesearch(
        self,
        ra: float | SkyCoord,
        dec: float | None = None,
        radius: float | Quantity = 10.0,
        *,
        n: int | None = None,
        startdate: str | float | None = None,
        stopdate: str | float | None = None,
        columns: Iterable[str] | None = None,
    ) -> Table:
        """Return the objects inside a cone: one row each (its latest alert), nearest first.

        Parameters
        ----------
        ra : float or astropy.coordinates.SkyCoord
            The centre's right ascension in degrees, or the centre itself (``dec`` None).
        dec : float, optional
            The centre's declination in degrees.
        radius : float or astropy.units.Quantity, optional
            The cone's radius: arcseconds, or an angle (default 10 arcsec; at most 18,000
            arcsec, the service's cap).
        n : int, optional
            Most rows (the service's default: 1000).
        startdate, stopdate : str or float, optional
            Keep the objects first detected since ``startdate`` and whose latest alert is
            not after ``stopdate``: ISO dates (UTC), MJD or JD numbers.
        columns : iterable of str, optional
            Columns to ask for (default all); ``ra``, ``dec`` and the columns the dates
            filter on are added.

        Returns
        -------
        astropy.table.Table
            Sorted by ``separation_degree`` (degrees from the centre).

        Raises
        ------
        InputError
            For a centre off the sphere, a radius not in (0, 18000] arcsec, ``n`` < 1 or
            a bad date (nothing is sent).
        BadRequestError
            When the service refuses the search.
        """
        ra_deg, dec_deg = cone_centre(ra, dec)
        arcsec = cone_radius(radius)
        fields: dict[str, Any] = {"ra": ra_deg, "dec": dec_deg, "radius": arcsec}
        if n is not None:
            fields["n"] = check_count("n", n)
        date_fields(fields, startdate, stopdate)
        needed = [c for f, c in (("startdate", _FIRST_SEEN), ("stopdate", _TIME)) if f in fields]
        wanted = _columns(columns, "r:ra", "r:dec", *needed)
        if wanted is not None:
            fields["columns"] = ",".join(wanted)
        what = f"cone search at ra={ra_deg:g} dec={dec_deg:g} radius={arcsec:g} arcsec"
        rows = self._rows(CONESEARCH_PATH, fields, what)
        rows.sort(key=lambda r: float(r.get(SEPARATION_COLUMN) or 0.0))
        return _table(rows, None if wanted is None else [*wanted, SEPARATION_COLUMN])

    def tags(self) -> list[str]:
        """Return the Fink tags the service lists (a GET of ``/api/v1/tags``)."""

        def decode(body: bytes) -> list[str]:
            listed = decode_json(body)
            if isinstance(listed, dict):
                listed = list(listed)
            if not isinstance(listed, list) or not all(isinstance(t, str) for t in listed):
                from finkcube.errors import DecodeError

                raise DecodeError(f"the tags reply is not a list of tags: {body[:200]!r}")
            return listed

        return self._exchange.post(
            self.url + TAGS_PATH,
            {},
            decode,
            "list of tags",
            ("max_sources_bytes", self.max_sources_bytes),
            "GET",
        )

    def tag(
        self,
        tag: str,
        *,
        n: int = 10,
        startdate: str | float | None = None,
        stopdate: str | float | None = None,
        columns: Iterable[str] | None = None,
    ) -> Table:
        """Return the latest alerts of a Fink tag, newest first.

        Parameters
        ----------
        tag : str
            One of the tags :meth:`tags` lists; the service refuses others (400).
        n : int, optional
            How many alerts (default 10).
        startdate, stopdate : str or float, optional
            The alerts' time range: ISO dates (UTC), MJD or JD numbers (sent as ISO).
        columns : iterable of str, optional
            Columns to ask for (default all).

        Raises
        ------
        InputError
            For an empty tag, ``n`` < 1 or a bad date (nothing is sent).
        BadRequestError
            For a tag the API does not serve ("only available from the Livestream
            service"), naming it.
        """
        if not isinstance(tag, str) or not tag.strip():
            raise InputError(f"invalid tag {tag!r}: expected a tag name (see tags())")
        fields: dict[str, Any] = {"tag": tag.strip(), "n": check_count("n", n)}
        date_fields(fields, startdate, stopdate)
        wanted = _columns(columns)
        if wanted is not None:
            fields["columns"] = ",".join(wanted)
        rows = self._rows(TAGS_PATH, fields, f"alerts of tag {tag.strip()!r}", most=n)
        rows.sort(key=lambda r: -float(r.get(_TIME) or 0.0))
        return _table(rows, wanted)

    def resolve(
        self, name: str, *, resolver: str = "tns", reverse: bool = False, nmax: int = 10
    ) -> Table:
        """Resolve a name to diaObjectIds, or (``reverse``) a diaObjectId to its names.

        Parameters
        ----------
        name : str
            A name (``tns``: a TNS name such as ``SN 2026abc``, matched case-insensitively
            as a prefix), or with ``reverse`` a diaObjectId.
        resolver : str, optional
            ``tns`` (default), ``simbad`` or ``ssodnet``.
        reverse : bool, optional
            Resolve a diaObjectId to its names.
        nmax : int, optional
            Most rows (default 10).

        Returns
        -------
        astropy.table.Table
            ``tns``: ``fullname``, ``internalname``, ``diaObjectId``, ``ra``,
            ``declination``, ``type`` as served; no rows when nothing matches.
        """
        resolver = canonical(resolver, RESOLVERS, "resolver")
        if not isinstance(name, str | int) or isinstance(name, bool) or not str(name).strip():
            raise InputError(f"invalid name {name!r}: expected a name or a diaObjectId")
        text = str(name).strip()
        if reverse and resolver != "ssodnet":
            text = str(checked_ids(text)[0])  # a diaObjectId
        fields = {
            "resolver": resolver,
            "name_or_id": text,
            "reverse": bool(reverse),
            "nmax": check_count("nmax", nmax),
        }
        what = f"{resolver} {'reverse ' if reverse else ''}resolution of {text!r}"
        return _table(self._rows(RESOLVER_PATH, fields, what), None)

    def objects(
        self, object_ids: int | str | Iterable[int | str], columns: Iterable[str] | None = None
    ) -> Table:
        """Return the diaObject aggregates of one or many objects (one request).

        One row per object the service knows (unknown ids give none), in the service's
        order; ``columns`` default to all (``r:nDiaSources``, first and last times, per-band
        fluxes, ``f:is_cataloged``, ``f:main_label_classifier``, ...).

        Raises
        ------
        InvalidIdError
            For a malformed id (nothing is sent).
        """
        fields, what = objects_request("objects", object_ids, columns)
        most = fields[OBJECT_ID].count(",") + 1
        rows = self._rows(OBJECTS_PATH, fields, what, most=most)
        return _table(rows, request_columns(columns))

    def forced_photometry(
        self, object_ids: int | str | Iterable[int | str], columns: Iterable[str] | None = None
    ) -> Table:
        """Return the forced photometry of one or many objects: one row per visit.

        Every visit of the object, detected or not (fluxes in nJy), newest first when
        ``midpointMjdTai`` is among the columns (one request).

        Raises
        ------
        InvalidIdError
            For a malformed id (nothing is sent).
        """
        fields, what = objects_request("forced photometry", object_ids, columns)
        rows = self._rows(FP_PATH, fields, what)
        return _table(rows, request_columns(columns))
