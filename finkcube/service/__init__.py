"""Talking to the Fink LSST API: HTTP only.

:mod:`~finkcube.service.client` holds :class:`FinkClient` (one ``requests.Session``, timeouts,
retries, a bounded pool), :mod:`~finkcube.service.exchange` its retry loop;
:mod:`~finkcube.service.retry` decides what a failed try gets,
:mod:`~finkcube.service.limits` how large a reply may be;
:mod:`~finkcube.service.payloads` builds and checks requests; :mod:`~finkcube.service.replies`
and :mod:`~finkcube.service.decode` turn reply bytes into records and stamps
(:mod:`~finkcube.service.fitsfile` for the FITS files). Nothing here knows about cubes or stores.
"""

from finkcube.service.client import FinkClient

__all__ = ["FinkClient"]
