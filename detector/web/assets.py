"""The pages' HTML shell, the packaged static files, and the self-contained report.

Every page is one shell: the style, the vendored graph library, ``app.js`` and a
``<body data-page=…>`` saying what to draw. Served live, the shell links the files under
``/static/`` and the script fetches ``/api/…``. As a report (``detector replay
--report``), the same shell inlines the files and carries the data in a
``<script type="application/json" id="lmd-data">`` block, so one HTML file opens offline
with the same script drawing the same page.

Static files are read from the installed package (``importlib.resources``) and only those
named in :data:`STATIC` are ever served, so a request path cannot reach anything else.
"""

from __future__ import annotations

import html
import re
from functools import cache
from importlib import resources
from typing import Any, Final

import orjson

STATIC: Final = {
    "app.css": "text/css; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "vendor/cytoscape.min.js": "text/javascript; charset=utf-8",
    "vendor/cytoscape-dagre.min.js": "text/javascript; charset=utf-8",
    "vendor/LICENSE.cytoscape": "text/plain; charset=utf-8",
    "vendor/LICENSE.cytoscape-dagre": "text/plain; charset=utf-8",
    "vendor/LICENSE.dagre": "text/plain; charset=utf-8",
    "vendor/LICENSE.graphlib": "text/plain; charset=utf-8",
    "vendor/manifest.json": "application/json",
}
# cytoscape injects a <style> (which the CSP forbids) unless an element with this id
# exists; app.css carries the one rule it would add.
_CYTOSCAPE_SHEET: Final = "__________cytoscape_stylesheet"
_CLOSE: Final = re.compile(r"</script|<!--", re.IGNORECASE)
_SCRIPTS: Final = ("vendor/cytoscape.min.js", "vendor/cytoscape-dagre.min.js", "app.js")
# Scripts only from this origin, no inline script, no framing: the pages show
# attacker-influenced strings (command lines, pod names), always as text, never as HTML.
CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@cache
def static_file(name: str) -> bytes:
    """One file of :data:`STATIC` from the package; KeyError for any other name."""
    if name not in STATIC:
        raise KeyError(name)
    return resources.files("detector.web").joinpath("static", *name.split("/")).read_bytes()


def page(kind: str, title: str, incident: str = "") -> str:
    """The live shell: ``kind`` is ``list`` or ``incident``."""
    head = f'<link rel="stylesheet" id="{_CYTOSCAPE_SHEET}" href="/static/app.css">'
    scripts = "".join(f'<script src="/static/{name}"></script>' for name in _SCRIPTS)
    return _shell(kind, title, head, scripts, incident)


def report(title: str, data: dict[str, Any]) -> str:
    """One self-contained file: the shell with every asset and the data inlined."""
    style = f'<style id="{_CYTOSCAPE_SHEET}">{static_file("app.css").decode()}</style>'
    # JSON may escape "/" anywhere, so no "</" of the data can close the element
    payload = orjson.dumps(data).decode().replace("</", "<\\/")
    blocks = [f'<script type="application/json" id="lmd-data">{payload}</script>']
    blocks += [f"<script>{_script_safe(static_file(name).decode())}</script>" for name in _SCRIPTS]
    return _shell("report", title, style, "".join(blocks))


def _shell(kind: str, title: str, head: str, scripts: str, incident: str = "") -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{html.escape(title)}</title><link rel="icon" href="data:,">{head}</head>'
        f'<body data-page="{kind}" data-incident="{html.escape(incident, quote=True)}">'
        '<header class="bar"><a class="home" href="/incidents">Incidents</a>'
        '<span id="status" class="status"></span></header>'
        f'<main id="app"><p class="loading">Loading…</p></main>{scripts}</body></html>'
    )


def _script_safe(code: str) -> str:
    """Script code that cannot end the ``<script>`` element it is inlined in (the shipped
    files contain no such sequence; a test checks, so this never changes their meaning)."""
    if _CLOSE.search(code):
        raise ValueError("script contains </script or <!--; cannot be inlined")
    return code
