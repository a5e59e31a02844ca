"""The analyst's pages: ``/incidents`` and ``/incidents/{id}``, served by ``detector run``.

* :mod:`detector.web.pages` — the routes (pages, their JSON API, the static files), mounted
  on the same listener as the receivers (``http.listen``, its TLS and bearer token);
* :mod:`detector.web.assets` — the HTML shell and the packaged static files, and the
  self-contained report (``detector replay --report``) that inlines them;
* ``static/`` — the page script and style, and the vendored graph library
  (``static/vendor/``, written by ``scripts/vendor-web.sh``; no CDN, works air-gapped).
"""
