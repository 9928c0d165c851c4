"""Keep secrets out of reports.

Every string that goes into a report (evidence, reasons, stack outputs) passes
through :func:`redact` first, so the HTML, PDF, JSON and JUnit outputs are all
built from redacted data.  What is removed:

- PEM blocks (``-----BEGIN ... -----END ...-----``): private keys of any kind,
  and certificates too (they are noise in a report and a block may be mislabelled);
- WireGuard keys (32 bytes, base64: 43 characters and ``=``) unless the key
  they sit under, or the text just before them, says it is a *public* key;
- ``age`` secret keys, ``PrivateKey = ...`` lines and ``password=...``-style
  assignments in free text;
- the value of any key named like ``*private*``, ``*passphrase*``, ``*secret*``,
  ``*password*``, ``*token*``, ``*credential*``, ``*api_key*``.  Under such a key
  only booleans, numbers and a few configuration words (``yes``, ``no``,
  ``disabled``...) are kept, so that evidence such as
  ``PasswordAuthentication: no`` still reads.

:func:`find_secrets` is the last line of defence: the writers refuse to write
an output in which it still finds something that looks like a secret.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

REDACTED = "[redacted]"

SENSITIVE_KEY = re.compile(
    r"private|passphrase|secret|passw(or)?d|passwd|token|credential|api[_-]?key|psk|preshared", re.I
)
PUBLIC_KEY_NAME = re.compile(r"public|pubkey|peer_key|peers?$", re.I)

# Words that configuration evidence legitimately carries under a sensitive key name.
SAFE_WORDS = {
    "", "yes", "no", "true", "false", "on", "off", "enabled", "disabled", "none", "null",
    "prohibit-password", "without-password", "forced-commands-only", "required", "optional",
    "present", "absent", "set", "unset", "ok", "missing", "aescbc", "aesgcm", "secretbox", "kms",
    "identity", "restricted", "0600", "0400", "0640", "0644", "root", "root:root",
}

PEM_BLOCK = re.compile(
    r"-----BEGIN ([A-Z0-9 ]{1,40})-----.*?(?:-----END \1-----|\Z)", re.S
)
PEM_MARKER = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----|-----BEGIN [A-Z0-9 ]*ENCRYPTED[A-Z0-9 ]*-----")
# 32 bytes in base64: 42 free characters, one of 16 and "=".
WG_KEY = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=(?![A-Za-z0-9+/=])")
WG_PUBLIC_BEFORE = re.compile(r"(public[ _-]?key|pubkey|peer)\s*[=:]?\s*[\"']?$", re.I)
AGE_KEY = re.compile(r"AGE-SECRET-KEY-1[0-9A-Z]{20,}")
ASSIGNMENT = re.compile(
    r"(?P<k>[A-Za-z0-9_.-]*(?:private[ _-]?key|passphrase|secret|passw(?:or)?d|passwd|token|api[_-]?key)[A-Za-z0-9_.-]*)"
    r"(?P<sep>\s*(?:=|:)\s*)(?P<q>[\"']?)(?P<v>[^\s\"',;]+)",
    re.I,
)


_HINT = re.compile(r"-----BEGIN|AGE-SECRET|private|passphrase|secret|passw|passwd|token|api[_-]?key", re.I)


def _redact_text(s: str) -> str:
    if len(s) < 44 and not _HINT.search(s):
        return s  # fast path: too short for a key, no word that introduces a secret
    s = PEM_BLOCK.sub(lambda m: f"[redacted PEM block: {m.group(1).strip()}]", s)
    s = AGE_KEY.sub(REDACTED, s)

    def assignment(m: re.Match) -> str:
        v = m.group("v")
        if v.lower() in SAFE_WORDS or v.replace(".", "").isdigit() or v.startswith("[redacted"):
            return m.group(0)
        return f"{m.group('k')}{m.group('sep')}{m.group('q')}{REDACTED}"

    s = ASSIGNMENT.sub(assignment, s)

    def wg(m: re.Match) -> str:
        before = s[max(0, m.start() - 24) : m.start()]
        return m.group(0) if WG_PUBLIC_BEFORE.search(before) else REDACTED

    return WG_KEY.sub(wg, s)


def _sensitive_leaf(v: Any) -> Any:
    if v is None or isinstance(v, (bool, int, float)):
        return v
    if isinstance(v, str):
        return v if v.strip().lower() in SAFE_WORDS else REDACTED
    if isinstance(v, dict):
        return {k: _sensitive_leaf(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_sensitive_leaf(x) for x in v]
    return REDACTED


@lru_cache(maxsize=8192)
def _key(k: str) -> tuple[str, bool]:
    """A mapping key, redacted itself, and whether its value is sensitive."""
    return _redact_text(k), bool(SENSITIVE_KEY.search(k)) and not PUBLIC_KEY_NAME.search(k)


def redact(value: Any, key: str = "") -> Any:
    """Return a copy of ``value`` (JSON-like data) with every secret replaced."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            ks = str(k)
            safe_k, sensitive = _key(ks)
            out[safe_k] = _sensitive_leaf(v) if sensitive else redact(v, ks)
        return out
    if isinstance(value, (list, tuple)):
        return [redact(v, key) for v in value]
    if isinstance(value, str):
        if key and PUBLIC_KEY_NAME.search(key):
            # public keys may stay; still strip PEM private blocks and assignments
            s = PEM_BLOCK.sub(lambda m: f"[redacted PEM block: {m.group(1).strip()}]", value)
            return ASSIGNMENT.sub(lambda m: m.group(0) if m.group("v").lower() in SAFE_WORDS else
                                  f"{m.group('k')}{m.group('sep')}{m.group('q')}{REDACTED}", s)
        return _redact_text(value)
    return value


def find_secrets(text: str) -> list[str]:
    """Things in a rendered output that still look like secrets (should be none)."""
    found = [m.group(0) for m in PEM_MARKER.finditer(text)]
    found += [m.group(0)[:24] + "..." for m in AGE_KEY.finditer(text)]
    return found


class SecretLeak(RuntimeError):
    """A rendered report still contains something that looks like a secret."""
