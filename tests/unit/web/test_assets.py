"""The pages' packaged files: the vendored graph library is the pinned one; all files exist."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from detector.web import assets

VENDOR = Path(assets.__file__).parent / "static" / "vendor"


def test_vendored_files_match_the_manifest_of_the_pinned_versions() -> None:
    """scripts/vendor-web.sh wrote the manifest; ``--check`` re-fetches and compares."""
    manifest = json.loads((VENDOR / "manifest.json").read_text())
    pins = json.loads((VENDOR / "package.json").read_text())["dependencies"]
    assert {name: manifest["packages"][name]["version"] for name in pins} == pins
    on_disk = {p.name for p in VENDOR.iterdir()} - {"manifest.json", "package.json"}
    assert on_disk == set(manifest["files"])
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
    assert f'"{pins["cytoscape"]}"' in (VENDOR / "cytoscape.min.js").read_text()


def test_every_licence_is_shipped_and_served() -> None:
    licences = {p.name for p in VENDOR.glob("LICENSE.*")}
    assert licences == {
        "LICENSE.cytoscape",
        "LICENSE.cytoscape-dagre",
        "LICENSE.dagre",
        "LICENSE.graphlib",
    }
    assert {f"vendor/{name}" for name in licences} <= set(assets.STATIC)
    assert all(
        "MIT" in (VENDOR / n).read_text()
        or "Permission is hereby granted" in (VENDOR / n).read_text()
        for n in licences
    )


def test_every_static_file_is_in_the_package_and_scripts_can_be_inlined() -> None:
    for name in assets.STATIC:
        assert assets.static_file(name)
    page = assets.report("t", {})
    assert page.startswith("<!doctype html>")


def test_the_live_page_links_only_its_own_origin() -> None:
    page = assets.page("incident", "Incident <x>", 'inc-"1')
    assert 'src="/static/vendor/cytoscape.min.js"' in page
    assert "http://" not in page and "https://" not in page
    assert "Incident &lt;x&gt;" in page and 'data-incident="inc-&quot;1"' in page
