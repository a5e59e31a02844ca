"""Loading the global allowlist (known-good namespaces, images, service accounts, pods) from YAML.

One loader for `detector replay --allowlist` and `detector run`'s `engine.allowlist`; the
allowlist itself (:class:`correlation.allowlist.Allowlist`) and its matching live in
``correlation/``.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import yaml

from correlation.allowlist import EMPTY_ALLOWLIST, Allowlist
from detector.errors import UsageError


def load_allowlist(path: str | None) -> Allowlist:
    """The global allowlist from a YAML mapping; unknown keys are a usage error."""
    if path is None:
        return EMPTY_ALLOWLIST
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        return msgspec.convert(data or {}, Allowlist)
    except OSError as exc:
        raise UsageError(f"cannot read allowlist {path}: {exc.strerror}") from None
    except (yaml.YAMLError, msgspec.ValidationError) as exc:
        raise UsageError(f"bad allowlist {path}: {exc}") from None
