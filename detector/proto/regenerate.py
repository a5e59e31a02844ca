"""Regenerate the committed protobuf/gRPC modules from the ``.proto`` files beside this one.

Usage::

    python -m detector.proto.regenerate            # rewrite detector/proto/*_pb2*.py(i)
    python -m detector.proto.regenerate --out DIR  # write DIR/detector/proto/... instead

The invocation is pinned so that the output is byte-identical run after run: the include
root is the repository root (so descriptor names are ``detector/proto/<name>.proto`` and the
generated imports are ``from detector.proto import ...``), the well-known types come from
the ``grpc_tools`` package itself, the files are passed in a fixed order, and the
grpcio-tools version is checked against :data:`GRPCIO_TOOLS_VERSION` because the generated
text embeds the protoc and grpcio versions.

The ``.pyi`` stubs get a three-line header (:data:`PYI_HEADER`): the project's ruff and mypy
settings exclude generated ``*_pb2*.py`` but not ``.pyi``, and protoc's stubs use ``Optional``,
long lines and a bare ``Mapping``. The header silences exactly that without editing the body.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from importlib import metadata, resources
from pathlib import Path
from typing import Final

GRPCIO_TOOLS_VERSION: Final = "1.85.1"
PROTO_DIR: Final = Path(__file__).resolve().parent
REPO_ROOT: Final = PROTO_DIR.parent.parent
# Messages and enums for all three; service stubs only where a service exists.
MESSAGE_PROTOS: Final = ("schema.proto", "outputs.proto", "version.proto")
SERVICE_PROTOS: Final = ("outputs.proto", "version.proto")
PYI_HEADER: Final = '# ruff: noqa\n# fmt: off\n# mypy: disable-error-code="type-arg"\n'


class RegenerateError(RuntimeError):
    """protoc failed or the grpcio-tools version is not the pinned one."""


def _check_tools_version() -> None:
    found = metadata.version("grpcio-tools")
    if found != GRPCIO_TOOLS_VERSION:
        raise RegenerateError(
            f"grpcio-tools {found} installed, generated code is pinned to "
            f"{GRPCIO_TOOLS_VERSION}; install that version or update the pin and regenerate"
        )


def _protoc(args: list[str]) -> None:
    # Imported late and untyped: grpcio-tools is a dev-only dependency without stubs.
    protoc = importlib.import_module("grpc_tools.protoc")
    well_known = resources.files("grpc_tools") / "_proto"
    argv = ["grpc_tools.protoc", f"-I{REPO_ROOT}", f"-I{well_known}", *args]
    code = protoc.main(argv)
    if code != 0:
        raise RegenerateError(f"protoc exited with {code}: {' '.join(args)}")


def regenerate(out: Path) -> list[Path]:
    """Generate into ``out`` (the tree root); return the written module paths, sorted."""
    _check_tools_version()
    out.mkdir(parents=True, exist_ok=True)
    rel = PROTO_DIR.relative_to(REPO_ROOT)
    messages = [str(rel / name) for name in MESSAGE_PROTOS]
    services = [str(rel / name) for name in SERVICE_PROTOS]
    _protoc([f"--python_out={out}", f"--pyi_out={out}", *messages])
    _protoc([f"--grpc_python_out={out}", *services])
    for stub in (out / rel).glob("*_pb2.pyi"):
        stub.write_text(PYI_HEADER + stub.read_text(encoding="utf-8"), encoding="utf-8")
    return sorted((out / rel).glob("*_pb2*.py*"))


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=REPO_ROOT, help="tree root to write into")
    args = parser.parse_args(argv)
    try:
        written = regenerate(args.out)
    except RegenerateError as exc:
        print(f"regenerate: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
