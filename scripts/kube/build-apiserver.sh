#!/usr/bin/env bash
# Builds kube-apiserver from the Go module proxy (there is no Debian package) and caches the
# binary by version outside the repository; prints the binary's path. A cache hit takes
# seconds, a cold build ~10 minutes on 2 cores (~0.6 GB module cache, ~2 GB build cache).
#
# `go install k8s.io/kubernetes/cmd/kube-apiserver@v…` refuses the module because its go.mod
# replaces the ~31 staging modules (k8s.io/api, k8s.io/apiserver, …) with ./staging paths. A
# wrapper module that requires k8s.io/kubernetes and replaces each staging module with its
# published k8s.io/<name> v0.<minor>.<patch> builds the same sources.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version="${KUBE_VERSION:-$(cat "$here/VERSION")}"
cache_root="${LCD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lateral-chain-detector}"
out_dir="$cache_root/kube/$version"
binary="$out_dir/kube-apiserver"
if [ -x "$binary" ]; then echo "$binary"; exit 0; fi

command -v go >/dev/null || { echo "build-apiserver: Go is required (https://go.dev/doc/install)" >&2; exit 1; }
mkdir -p "$cache_root/kube"
exec 9>"$cache_root/kube/.lock"
flock 9   # a second caller waits for the first build instead of racing it
if [ -x "$binary" ]; then echo "$binary"; exit 0; fi

staging_version="v0.${version#v1.}"
work="$(mktemp -d "$cache_root/kube/.build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cd "$work"
export GOFLAGS="${GOFLAGS:-} -mod=mod -buildvcs=false" CGO_ENABLED=0
if ! download="$(go mod download -json "k8s.io/kubernetes@$version" 2>&1)"; then
  echo "build-apiserver: cannot fetch k8s.io/kubernetes@$version:" >&2
  echo "$download" >&2
  exit 1
fi
kube_mod="$(echo "$download" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')"
[ -f "$kube_mod" ] || { echo "build-apiserver: no go.mod for k8s.io/kubernetes@$version" >&2; exit 1; }
go_line="$(grep -m1 '^go ' "$kube_mod")"
{
  echo "module lcd.local/kube-apiserver-build"
  echo
  echo "$go_line"
  grep '^godebug ' "$kube_mod" || true
  echo
  echo "require k8s.io/kubernetes $version"
  echo
  echo "replace ("
  # Each `k8s.io/<name> => ./staging/src/k8s.io/<name>` of kubernetes' go.mod becomes the
  # published module of the same release.
  sed -n 's#^\t\(k8s\.io/[a-z0-9-]*\) => \./staging/src/.*$#\t\1 => \1 '"$staging_version"'#p' "$kube_mod"
  echo ")"
} > go.mod
[ "$(grep -c "=> k8s.io/.* $staging_version" go.mod)" -gt 20 ] \
  || { echo "build-apiserver: found no staging replaces in kubernetes' go.mod" >&2; exit 1; }
echo "build-apiserver: building kube-apiserver $version (cold caches take ~10 min)" >&2
go get "k8s.io/kubernetes/cmd/kube-apiserver@$version" >&2
major_minor="${version#v}"; major="${major_minor%%.*}"; minor="${major_minor#*.}"; minor="${minor%%.*}"
ldflags="-s -w"
for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
  # What hack/lib/version.sh sets; without it the server reports v0.0.0-master.
  ldflags+=" -X '$pkg.gitVersion=$version' -X '$pkg.gitMajor=$major' -X '$pkg.gitMinor=$minor'"
  ldflags+=" -X '$pkg.gitTreeState=clean' -X '$pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)'"
done
go build -trimpath -ldflags "$ldflags" -o "$work/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver >&2
"$work/kube-apiserver" --version >&2
mkdir -p "$out_dir"
mv "$work/kube-apiserver" "$binary"
echo "$binary"
