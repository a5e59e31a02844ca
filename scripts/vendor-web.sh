#!/usr/bin/env bash
# Vendors the incident pages' graph library (cytoscape + the dagre layered layout) into
# detector/web/static/vendor/, so the pages work air-gapped and from a clean clone
# without npm. The versions are pinned in detector/web/static/vendor/package.json.
#
#   scripts/vendor-web.sh          npm install (into a cache dir) and copy the dist files,
#                                  licences and a manifest (versions, npm integrity, sha256)
#   scripts/vendor-web.sh --check  the same into a scratch dir, then compare with what is
#                                  committed; exit 1 on any difference
#
# @dagrejs/dagre (and its @dagrejs/graphlib) are bundled inside cytoscape-dagre's dist
# file; they are installed only so that their licences are copied too.
set -euo pipefail
cd "$(dirname "$0")/.."
vendor=detector/web/static/vendor
cache=${VENDOR_NPM_CACHE:-.cache/vendor-web}
target=$vendor
if [ "${1:-}" = "--check" ]; then
  target=$(mktemp -d)
  trap 'rm -rf "$target"' EXIT
fi
mkdir -p "$cache"
cp "$vendor/package.json" "$cache/package.json"
(cd "$cache" && npm install --no-audit --no-fund --ignore-scripts --omit=dev --silent)
modules=$cache/node_modules
copy() { install -m 0644 "$modules/$1" "$target/$2"; }
copy cytoscape/dist/cytoscape.min.js cytoscape.min.js
copy cytoscape-dagre/dist/cytoscape-dagre.min.js cytoscape-dagre.min.js
copy cytoscape/LICENSE LICENSE.cytoscape
copy cytoscape-dagre/LICENSE LICENSE.cytoscape-dagre
copy @dagrejs/dagre/LICENSE LICENSE.dagre
copy @dagrejs/graphlib/LICENSE LICENSE.graphlib
[ "$target" = "$vendor" ] || cp "$vendor/package.json" "$target/package.json"
python3 - "$cache" "$target" <<'PY'
import hashlib, json, sys
from pathlib import Path
cache, target = Path(sys.argv[1]), Path(sys.argv[2])
lock = json.loads((cache / "package-lock.json").read_text())["packages"]
pins = json.loads((target / "package.json").read_text())["dependencies"]
names = [*pins, "@dagrejs/graphlib"]
manifest = {
    "packages": {
        name: {
            "version": lock[f"node_modules/{name}"]["version"],
            "integrity": lock[f"node_modules/{name}"]["integrity"],
        }
        for name in names
    },
    "files": {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(target.iterdir())
        if path.name not in ("manifest.json", "package.json")
    },
}
(target / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
PY
if [ "$target" != "$vendor" ]; then
  diff -r "$vendor" "$target" && echo "vendored files match the pinned versions"
fi
