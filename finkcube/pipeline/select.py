"""Selecting objects through the service's search endpoints: a :class:`Selection` value.

A selection starts from one search (a cone, ``/api/v1/conesearch``; a Fink tag,
``/api/v1/tags``; a name, ``/api/v1/resolver``), keeps the unique diaObjectIds of the rows
found, in the order served, then filters them on their ``/api/v1/objects`` summaries
(``nDiaSources``), one request per :data:`OBJECTS_BATCH` objects on the client's pool. A
selection is plain, frozen data with a JSON round trip, so that a store can record it and
``update --reselect`` can run it again.

Dates (``since``, ``until``) are kept as MJD (TAI); an ISO date or time is read as UTC.
They are sent as ISO times (UTC), which every search endpoint reads (``/api/v1/tags``
answers an MJD with a 500). For a cone, ``since`` bounds each object's first detection by
Fink (``firstDiaSourceMjdTaiFink``) and ``until`` its latest alert; for a tag, both bound
the alerts' times.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

from finkcube.errors import BadRequestError, InputError
from finkcube.names import MAX_CONE_RADIUS_ARCSEC, OBJECT_ID, RESOLVERS
from finkcube.service.client import FinkClient

if TYPE_CHECKING:
    from astropy.table import Table

__all__ = [
    "OBJECTS_BATCH",
    "Selection",
    "find",
    "object_summaries",
    "parse_date",
    "select_objects",
]

#: How many objects one ``/api/v1/objects`` request summarises.
OBJECTS_BATCH = 50
#: The summary column the source-count filters read.
SOURCES_COLUMN = "nDiaSources"


def parse_date(value: object) -> float:
    """A date as MJD (TAI): a number or numeric text is an MJD, other text an ISO date (UTC).

    Examples
    --------
    >>> parse_date("61000.5"), round(parse_date("2026-01-01"), 5)
    (61000.5, 61041.00043)
    """
    if isinstance(value, bool):
        raise InputError(f"invalid date {value!r}: expected an ISO date or an MJD")
    if isinstance(value, int | float):
        mjd = float(value)
    else:
        text = str(value).strip()
        try:
            mjd = float(text)
        except ValueError:
            from astropy.time import Time

            try:
                mjd = float(Time(text, scale="utc").tai.mjd)
            except ValueError:
                raise InputError(
                    f"invalid date {text!r}: expected an ISO date (2026-01-31, UTC) or an MJD"
                ) from None
    if not math.isfinite(mjd):
        raise InputError(f"invalid date {value!r}: expected an ISO date or an MJD")
    return mjd


def _count(name: str, value: object, low: int) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
        raise InputError(f"invalid {name} {value!r}: expected an integer >= {low}")


@dataclass(frozen=True, slots=True)
class Selection:
    """Which objects to take: one search (cone, tag or name), then filters.

    Attributes
    ----------
    ra, dec : float, optional
        The centre of a cone, in degrees (``0 <= ra < 360``, ``-90 <= dec <= 90``).
    radius_arcsec : float, optional
        The cone's radius in arcseconds, at most 18,000 (5 degrees, the service's cap).
    tag : str, optional
        A Fink tag (``most_likely_sn``, ...): its latest alerts, newest first.
    name : str, optional
        A name to resolve (a TNS name, ...), with ``resolver``.
    resolver : {"tns", "simbad", "ssodnet"}
        The resolver of ``name``.
    n : int, optional
        Rows asked of the search (the service's default when None: 1000 for a cone, 10 for
        a tag or a name). Rows are alerts: an object with several among them counts once,
        so a selection may give fewer objects.
    since, until : float, optional
        MJD bounds on the objects' first detection by Fink (a cone or a tag).
    min_sources, max_sources : int, optional
        Keep the objects whose ``nDiaSources`` lies within these bounds.

    Examples
    --------
    >>> sel = Selection(tag="most_likely_sn", n=3, min_sources=20)
    >>> Selection.from_json(sel.to_json()) == sel
    True
    >>> Selection(tag="in_tns", name="2025abc")
    Traceback (most recent call last):
    ...
    finkcube.errors.InputError: give one search: a cone (--cone RA DEC RADIUS), a tag (--tag TAG) or a name (--name NAME), not 2
    """  # noqa: E501

    ra: float | None = None
    dec: float | None = None
    radius_arcsec: float | None = None
    tag: str | None = None
    name: str | None = None
    resolver: str = "tns"
    n: int | None = None
    since: float | None = None
    until: float | None = None
    min_sources: int | None = None
    max_sources: int | None = None

    def __post_init__(self) -> None:
        cone = (self.ra, self.dec, self.radius_arcsec)
        given = any(v is not None for v in cone) + (self.tag is not None) + (self.name is not None)
        if given != 1:
            raise InputError(
                "give one search: a cone (--cone RA DEC RADIUS), a tag (--tag TAG) or a name "
                f"(--name NAME), not {given}"
            )
        if self.kind == "cone":
            self._check_cone()
        for label, text in (("tag", self.tag), ("name", self.name)):
            if text is not None and (not isinstance(text, str) or not text.strip()):
                raise InputError(f"invalid {label} {text!r}: expected a non-empty text")
        if self.resolver not in RESOLVERS:
            raise InputError(
                f"invalid resolver {self.resolver!r}: expected one of {', '.join(RESOLVERS)}"
            )
        _count("n", self.n, 1)
        _count("min_sources", self.min_sources, 0)
        _count("max_sources", self.max_sources, 0)
        for label in ("since", "until"):
            value = getattr(self, label)
            if value is not None:
                object.__setattr__(self, label, parse_date(value))
        if self.kind == "name" and (self.since is not None or self.until is not None):
            raise InputError("--since and --until apply to a cone or a tag, not to a name")

    def _check_cone(self) -> None:
        values = []
        for label, value in (("ra", self.ra), ("dec", self.dec), ("radius", self.radius_arcsec)):
            try:
                number = float(value)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                number = math.nan
            if isinstance(value, bool) or not math.isfinite(number):
                raise InputError(f"invalid cone {label} {value!r}: expected a finite number")
            values.append(number)
        ra, dec, radius = values
        if not 0.0 <= ra < 360.0 or not -90.0 <= dec <= 90.0:
            raise InputError(f"invalid cone centre ({ra}, {dec}): expected 0 <= RA < 360 and "
                             "-90 <= DEC <= 90 degrees")  # fmt: skip
        if not 0.0 < radius <= MAX_CONE_RADIUS_ARCSEC:
            raise InputError(f"invalid cone radius {radius}: expected more than 0 and at most "
                             f"{MAX_CONE_RADIUS_ARCSEC:.0f} arcsec (5 degrees)")  # fmt: skip
        object.__setattr__(self, "ra", ra)
        object.__setattr__(self, "dec", dec)
        object.__setattr__(self, "radius_arcsec", radius)

    @property
    def kind(self) -> str:
        """``"cone"``, ``"tag"`` or ``"name"``: the search it starts from."""
        return "tag" if self.tag is not None else "name" if self.name is not None else "cone"

    @property
    def filtered(self) -> bool:
        """Whether the objects found are filtered on their summaries."""
        return self.min_sources is not None or self.max_sources is not None

    def describe(self) -> str:
        """A short text naming the selection, for messages.

        Examples
        --------
        >>> Selection(ra=10.0, dec=-5.0, radius_arcsec=30.0).describe()
        'cone (10.0, -5.0) 30.0"'
        """
        if self.kind == "cone":
            return f'cone ({self.ra}, {self.dec}) {self.radius_arcsec}"'
        if self.kind == "tag":
            return f"tag {self.tag}"
        return f"name {self.name} ({self.resolver})"

    def to_dict(self) -> dict[str, Any]:
        """The fields that are set, as a JSON object (the resolver of a name only)."""
        out = {k: v for k, v in asdict(self).items() if v is not None}
        if self.kind != "name":
            out.pop("resolver")
        return out

    def to_json(self) -> str:
        """The selection as JSON text (:meth:`from_json` reads it back)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Selection:
        """A selection from :meth:`to_dict`'s object; InputError for an unknown field."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"invalid selection: unknown field {unknown[0]!r}")
        return cls(**dict(data))

    @classmethod
    def from_json(cls, text: str) -> Selection:
        """A selection from :meth:`to_json`'s text; InputError when it is not one."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InputError(f"invalid selection: not JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise InputError("invalid selection: expected a JSON object")
        return cls.from_dict(data)


def _iso(mjd: float | None) -> str | None:
    """An MJD (TAI) as the ISO time (UTC) the service reads."""
    if mjd is None:
        return None
    from astropy.time import Time

    return str(Time(mjd, format="mjd", scale="tai").utc.isot)


def _search(client: FinkClient, sel: Selection) -> Table:
    """The rows of the selection's search (one request)."""
    start, stop = _iso(sel.since), _iso(sel.until)
    try:
        if sel.ra is not None and sel.dec is not None and sel.radius_arcsec is not None:
            return client.conesearch(
                sel.ra, sel.dec, sel.radius_arcsec, n=sel.n, startdate=start, stopdate=stop
            )
        if sel.tag is not None:  # the service's defaults: 10 alerts, 10 names
            return client.tag(sel.tag, n=sel.n or 10, startdate=start, stopdate=stop)
        return client.resolve(str(sel.name), resolver=sel.resolver, nmax=sel.n or 10)
    except BadRequestError as exc:  # the service refused the search's arguments: the user's
        raise InputError(f"the service refused the {sel.describe()} search: {exc}") from exc


def object_summaries(
    client: FinkClient, ids: Sequence[int], columns: Sequence[str] | None = None
) -> Table:
    """The ``/api/v1/objects`` summaries of ``ids``, one row per id in their order.

    One request per :data:`OBJECTS_BATCH` ids, on the client's pool. An object the service
    has no summary of keeps its row, masked but for its ``diaObjectId``.
    """
    import numpy as np
    from astropy.table import Table, join, vstack

    batches = [list(ids[i : i + OBJECTS_BATCH]) for i in range(0, len(ids), OBJECTS_BATCH)]
    wanted = None if columns is None else list(dict.fromkeys((OBJECT_ID, *columns)))
    tables = [t for t in client.map(lambda b: client.objects(b, columns=wanted), batches)]
    order = Table({OBJECT_ID: np.array(ids, dtype=np.int64), "_order": np.arange(len(ids))})
    found = [t for t in tables if len(t) and OBJECT_ID in t.colnames]
    if not found:
        order.remove_column("_order")
        return order
    summaries = vstack(found, join_type="outer", metadata_conflicts="silent")
    summaries = summaries[np.unique(np.asarray(summaries[OBJECT_ID]), return_index=True)[1]]
    out = join(order, summaries, keys=OBJECT_ID, join_type="left", metadata_conflicts="silent")
    out.sort("_order")
    out.remove_column("_order")
    return out


def _keep(table: Table, sel: Selection) -> list[bool]:
    """Which rows of a summary table pass the selection's filters."""
    if not sel.filtered:
        return [True] * len(table)
    if SOURCES_COLUMN not in table.colnames:
        return [False] * len(table)
    low = sel.min_sources if sel.min_sources is not None else 0
    high = sel.max_sources
    keep = []
    for value in table[SOURCES_COLUMN].tolist():  # masked: None
        keep.append(value is not None and low <= int(value) and (high is None or value <= high))
    return keep


def select_objects(client: FinkClient, selection: Selection) -> list[int]:
    """The diaObjectIds a selection gives now: searched, then filtered, order kept.

    Parameters
    ----------
    client : FinkClient
        The client (its pool runs the summary requests).
    selection : Selection
        What to select.

    Returns
    -------
    list of int
        Unique ids, in the order the search served them.

    Raises
    ------
    InputError
        When the service refuses the search (an unknown tag, a bad cone).
    """
    ids = _found_ids(client, selection)
    if not selection.filtered or not ids:
        return ids
    keep = _keep(object_summaries(client, ids, [SOURCES_COLUMN]), selection)
    return [oid for oid, kept in zip(ids, keep, strict=True) if kept]


def _found_ids(client: FinkClient, selection: Selection) -> list[int]:
    """The unique diaObjectIds of the search's rows, in the order served."""
    from finkcube.service.search import object_ids

    return object_ids(_search(client, selection))


def find(
    selection: Selection | None = None,
    *,
    client: FinkClient | None = None,
    url: str | None = None,
    **criteria: Any,
) -> Table:
    """Select objects through the service's search endpoints and return their summaries.

    Parameters
    ----------
    selection : Selection, optional
        What to select; or give its fields as keywords (``tag="most_likely_sn", n=50``).
    client : FinkClient, optional
        The client to use; by default one is made for ``url``.
    url : str, optional
        The API's base URL when no client is given (default: ``$FINKCUBE_URL``, else the
        Fink LSST API).
    **criteria
        The fields of a :class:`Selection`, when ``selection`` is not given.

    Returns
    -------
    astropy.table.Table
        One row per selected object, in the order the search served them: its
        ``/api/v1/objects`` summary (``diaObjectId``, ``nDiaSources``, ...; masked for an
        object the service has no summary of). ``table["diaObjectId"]`` is what
        :func:`~finkcube.build_store` takes, and the same objects as
        ``build_store(selection=...)`` builds.

    Raises
    ------
    InputError
        For a selection that is not one (nothing is sent), or one the service refuses.

    Examples
    --------
    >>> from finkcube.emulator import Emulator
    >>> with Emulator() as emu:
    ...     oid = emu.catalog.add_object(ra=10.0, dec=-5.0, sources=4)
    ...     table = find(ra=10.0, dec=-5.0, radius_arcsec=5.0, url=emu.url)
    >>> table["diaObjectId"].tolist() == [oid]
    True
    """
    if selection is None:
        selection = Selection(**criteria)
    elif criteria:
        raise InputError("give a Selection or its fields as keywords, not both")
    active = FinkClient(url) if client is None else client
    try:
        ids = _found_ids(active, selection)
        table = object_summaries(active, ids)
    finally:
        if client is None:
            active.close()
    return table[_keep(table, selection)]
