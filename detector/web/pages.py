"""The routes of the analyst's pages, mounted on the ``detector run`` listener::

    GET /incidents              the list (live: the script polls /api/incidents)
    GET /incidents/{id}         one incident: attack-path graph, timeline, chain records
    GET /api/incidents          summaries; filters since, until, severity, rule,
                                namespace, pod, service_account, node, limit
    GET /api/incidents/{id}     one incident's detail (404 when unknown)
    GET /static/{name}          the files of detector.web.assets.STATIC only

Every route needs the listener's bearer token when one is set (:mod:`detector.web.auth`).
A bad filter is a 400 naming it; the pages never render data as HTML (the script sets
text only), and the Content-Security-Policy forbids inline script besides.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from detector.errors import UsageError
from detector.incidents.query import parse_query
from detector.incidents.service import IncidentService
from detector.web import assets
from detector.web.auth import authorized, challenge

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_NO_STORE: Final = {"Cache-Control": "no-store"}
_PAGE_HEADERS: Final = {
    **_NO_STORE,
    "Content-Security-Policy": assets.CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class IncidentPages:
    """Pages and API over one :class:`IncidentService`."""

    def __init__(
        self, service: IncidentService, token: str, now: Callable[[], float] = time.time
    ) -> None:
        self._service, self._token, self._now = service, token, now

    def routes(self) -> list[web.RouteDef]:
        table = {
            "/incidents": self._list_page,
            "/incidents/{id}": self._incident_page,
            "/api/incidents": self._list_api,
            "/api/incidents/{id}": self._incident_api,
            "/static/{name:.+}": self._static,
        }
        return [web.get(path, self._guarded(handler)) for path, handler in table.items()]

    def _guarded(self, handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            if not authorized(request, self._token):
                return challenge()
            return await handler(request)

        return guarded

    async def _list_page(self, _request: web.Request) -> web.Response:
        return _html(assets.page("list", "Incidents"))

    async def _incident_page(self, request: web.Request) -> web.Response:
        incident = request.match_info["id"]
        return _html(assets.page("incident", f"Incident {incident}", incident))

    async def _list_api(self, request: web.Request) -> web.Response:
        try:
            query = parse_query(dict(request.query), self._now())
        except UsageError as exc:
            return web.json_response({"error": "bad_query", "detail": str(exc)}, status=400)
        found = await self._service.summaries(query)
        return web.json_response({"incidents": found}, headers=_NO_STORE)

    async def _incident_api(self, request: web.Request) -> web.Response:
        found = await self._service.detail(request.match_info["id"])
        if found is None:
            return web.json_response({"error": "not_found"}, status=404, headers=_NO_STORE)
        return web.json_response(found, headers=_NO_STORE)

    async def _static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in assets.STATIC:
            raise web.HTTPNotFound()
        headers = {
            "Content-Type": assets.STATIC[name],
            "Cache-Control": "max-age=3600",
            "X-Content-Type-Options": "nosniff",
        }
        return web.Response(body=assets.static_file(name), headers=headers)


def _html(text: str) -> web.Response:
    return web.Response(text=text, content_type="text/html", headers=_PAGE_HEADERS)
