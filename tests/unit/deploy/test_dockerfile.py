"""The Dockerfile, linted structurally (no Docker engine here to build it).

Checks the rules a reviewer would: base images pinned by version or digest, no ADD of
URLs, an unprivileged final USER, a HEALTHCHECK, every COPY source present in the build
context and not excluded by .dockerignore.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            rows.append((word.upper(), rest.strip()))
    return rows


def _args() -> dict[str, str]:
    return dict(
        rest.split("=", 1) for word, rest in _instructions() if word == "ARG" and "=" in rest
    )


def _base_images() -> list[str]:
    args = _args()
    images = []
    for word, rest in _instructions():
        if word == "FROM":
            image = rest.split()[0]
            images.append(re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image))
    return images


def test_base_images_are_pinned() -> None:
    for image in _base_images():
        name, _, tag = image.partition(":")
        assert "@sha256:" in image or re.match(r"\d+\.\d+\.\d+", tag), image
        assert tag != "latest"


def test_no_add_of_remote_urls() -> None:
    for word, rest in _instructions():
        assert not (word == "ADD" and re.search(r"https?://", rest)), rest


def test_final_user_is_unprivileged() -> None:
    users = [rest for word, rest in _instructions() if word == "USER"]
    assert users, "no USER instruction"
    uid = users[-1].split(":")[0]
    assert uid not in ("root", "0")


def test_healthcheck_probes_healthz() -> None:
    checks = [rest for word, rest in _instructions() if word == "HEALTHCHECK"]
    assert len(checks) == 1 and "/healthz" in checks[0]


def test_entrypoint_is_the_detector_cli() -> None:
    assert ("ENTRYPOINT", '["detector"]') in _instructions()


def _ignored() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_copy_sources_exist_and_are_not_ignored() -> None:
    ignored = _ignored()
    for word, rest in _instructions():
        if word != "COPY" or rest.startswith("--from"):
            continue
        for source in rest.split()[:-1]:
            assert list(ROOT.glob(source.rstrip("/"))), source
            assert source.rstrip("/") not in ignored, source


def test_context_excludes_local_state() -> None:
    assert {".git", ".venv", "tests"} <= set(_ignored())
