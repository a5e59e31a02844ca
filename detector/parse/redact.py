"""Credentials typed on command lines and in URLs, replaced by :data:`MARK` at parse time.

An attacker's command line is evidence, and it often carries the very credential being
stolen or replayed: ``curl -H 'Authorization: Bearer eyJ...' http://169.254.169.254/``,
``kubectl --token=...``, ``AWS_SECRET_ACCESS_KEY=... aws s3 ls``. The parsers pass every
free-text value that can hold a command line or URL through :func:`redact` before the
Event is built, so chain records, relay messages, checkpoints and logs never see the
secret. Only the secret is replaced; the rest of the line stays readable::

    curl -H Authorization: Bearer eyJhbGci.eyJzdWIi.c2ln http://169.254.169.254/
    curl -H Authorization: Bearer [REDACTED] http://169.254.169.254/

What counts as a secret (case-insensitive names):

* ``NAME: value`` / ``NAME=value`` where NAME's last word is authorization, token,
  secret, password, passwd, pass, cookie, credential(s), signature, apikey or ``*-key``
  (so ``Proxy-Authorization:``, ``X-aws-ec2-metadata-token:``, ``access_token=``,
  ``AWS_SECRET_ACCESS_KEY=``, ``X-Amz-Signature=``); an auth scheme word (Bearer, Basic,
  token ...) after the separator is kept. ``X-aws-ec2-metadata-token-ttl-seconds: 21600``
  and ``Metadata-Flavor: Google`` are not secrets and are kept.
* ``--token VALUE`` / ``--password VALUE`` style flags (a VALUE starting with ``-`` is
  the next flag: ``mysql --password -h db`` prompts), ``aws configure set
  aws_secret_access_key VALUE`` (not ``grep aws_secret_access_key FILE``), ``Bearer
  VALUE`` anywhere.
* AWS access key ids (``AKIA``/``ASIA``... + 16), JWT-shaped strings (``eyJ….….…``) and
  the password of ``scheme://user:password@host``.
* Tool-specific flags, only when the tool is the command of the same pipeline segment:
  ``mysql``/``mariadb`` ``-pSECRET`` (attached only: ``-p db`` prompts and names a
  database), ``sshpass -p SECRET``, ``curl -u user:SECRET``.

A value ends at whitespace, a quote or ``&`` (Falco's ``proc.cmdline`` joins argv with
spaces and drops the shell's quotes, so a multi-word cookie keeps its later pairs).
"""

from __future__ import annotations

import re
from typing import Final

MARK: Final = "[REDACTED]"

_VALUE: Final = r"[^\s'\"&=][^\s'\"&]*"
_FLAG_VALUE: Final = r"[^\s'\"&=-][^\s'\"&]*"
_WORD: Final = (
    r"(?:authorization|token|secret|password|passwd|pass|cookie|credentials?|signature"
    r"|api-?_?key)"
)
# "key" alone is too common ("--key=2" of sort); as the last part of a name it is not.
_NAME: Final = rf"(?<![A-Za-z0-9])(?:(?:[A-Za-z0-9]+[-_.])*{_WORD}|(?:[A-Za-z0-9]+[-_.])+key)"
_FLAG_WORD: Final = (
    r"(?:token|secret|password|passwd|pass|credentials?|api-?key|access-key|secret-key"
    r"|private-key)"
)
_TOOLS: Final = ("mysql", "mysqldump", "mysqladmin", "mariadb", "mariadb-dump", "sshpass", "curl")

# One pattern, one scan: each branch has exactly one named group, the secret, closing last.
_SECRET: Final = re.compile(
    "|".join(
        (
            # NAME: [scheme] value  /  NAME=value  (headers, env, query strings, literals)
            rf"{_NAME}['\"]?[ \t]*[:=][ \t]*['\"]?"
            rf"(?:(?:bearer|basic|token|digest|negotiate)[ \t]+)?(?P<named>{_VALUE})",
            # --token VALUE
            rf"(?<![A-Za-z0-9-])--?(?:[A-Za-z0-9]+-)*{_FLAG_WORD}[ \t]+(?P<flag>{_FLAG_VALUE})",
            # aws configure set aws_secret_access_key VALUE
            rf"(?<![A-Za-z0-9])set[ \t]+aws_(?:secret_access_key|session_token)[ \t]+"
            rf"(?P<awscfg>{_VALUE})",
            r"(?<![A-Za-z0-9])bearer[ \t]+(?P<bearer>[A-Za-z0-9._~+/-]+=*)",
            r"(?<![A-Za-z0-9])(?P<akid>(?-i:(?:AKIA|ASIA|AIDA|AROA|AGPA|ANPA|ANVA|AIPA)"
            r"[A-Z0-9]{16}))(?![A-Za-z0-9])",
            r"(?<![A-Za-z0-9_-])(?P<jwt>(?-i:eyJ)[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*)",
            r"[a-z][a-z0-9+.-]*://[^\s/@:'\"]+:(?P<userinfo>[^\s/@'\"]+)@",
            # Tool-specific: judged in _replace against the command of the segment.
            r"(?<=\s)-p(?P<attached_p>[^\s'\"-][^\s'\"]*)",
            r"(?<=\s)-p[ \t]+(?P<spaced_p>[^\s'\"-][^\s'\"]*)",
            r"(?<=\s)(?:-u|--user)(?:[ \t]+|=)?[^\s:'\"]+:(?P<user_pass>[^\s'\"]+)",
        )
    ),
    re.IGNORECASE,
)
# Which tools make a tool-specific branch a secret.
_TOOL_BRANCHES: Final = {
    "attached_p": frozenset(("mysql", "mysqldump", "mysqladmin", "mariadb", "mariadb-dump")),
    "spaced_p": frozenset(("sshpass",)),
    "user_pass": frozenset(("curl",)),
}
# Cheap pre-checks, so the ~all values that hold no secret skip the full scan (~30 µs
# on a command line: Python's re tries every branch at every position).
# 1. Every branch of _SECRET needs an upper-case letter (AKIA, eyJ), ":", "=", "@" or
#    whitespace: a value with none of them (most request paths) cannot match.
_SHAPE: Final = re.compile(r"[A-Z:=@\s]")
# ... and a plain API path is cleared faster still by one tight loop (~0.2 µs).
_PLAIN: Final = re.compile(r"[a-z0-9/._-]*")
# 2. Every branch needs one of these in the lower-cased text; a name-like <word> only
#    counts when a separator follows its name, so ".../serviceaccount/token" (read by
#    every pod our rules watch) is not scanned.
_KEYWORD: Final = re.compile(
    r"(?P<word>auth|token|secret|pass|cookie|credential|signature|key)"
    r"|bearer|eyj|@|-[pu]|akia|asia|aida|aroa|agpa|anpa|anva|aipa"
)
_AFTER_WORD: Final = re.compile(r"[a-z0-9_.-]*['\"]?[ \t]*[:= \t]")
_SEGMENT_END: Final = re.compile(r"[;|&\n]")
_COMMAND_WORD: Final = re.compile(r"(?:^|[\s/])(" + "|".join(map(re.escape, _TOOLS)) + r")(?=\s)")


def redact(text: str) -> str:
    """``text`` with every credential it holds replaced by :data:`MARK`.

    Returns ``text`` itself (the same object) when nothing matches, which is the common
    case and costs one or two quick scans.
    """
    if _PLAIN.fullmatch(text) or _SHAPE.search(text) is None:
        return text
    if not _has_keyword(text.lower()):
        return text
    return _SECRET.sub(_replace, text)


def redact_args(command: str, args: str) -> str:
    """:func:`redact` for an argument list without its command (Falco's ``proc.args``):
    the command (``proc.name``) is put back in front so tool-specific flags are judged."""
    if not command or " " in command:
        return redact(args)
    prefix = command + " "
    joined = redact(prefix + args)
    return joined[len(prefix) :] if joined.startswith(prefix) else redact(args)


def _has_keyword(lowered: str) -> bool:
    for match in _KEYWORD.finditer(lowered):
        if match.lastgroup != "word" or _AFTER_WORD.match(lowered, match.end()):
            return True
    return False


def _replace(match: re.Match[str]) -> str:
    group = match.lastgroup or ""
    tools = _TOOL_BRANCHES.get(group)
    if tools is not None and _segment_tool(match) not in tools:
        return match.group(0)
    start, end = match.span(group)
    whole_start = match.start()
    text = match.group(0)
    return text[: start - whole_start] + MARK + text[end - whole_start :]


def _segment_tool(match: re.Match[str]) -> str:
    """The last known tool named in the pipeline segment before ``match`` (or "")."""
    before = match.string[: match.start()]
    segment = _SEGMENT_END.split(before)[-1]
    found = _COMMAND_WORD.findall(segment + " ")
    return found[-1].lower() if found else ""
