"""Keep secrets out of everything dcops writes for people: check results and reports.

One function, :func:`redact`, used by ``checks.result.write_results`` (the results JSON) and by
the report (``infra.report``, which re-exports this module as ``infra.report.redact``).  It takes
JSON-like data and returns a copy in which every secret is replaced.  A secret is recognised by
what it *is*, wherever it sits; a key's name only adds to that (a value under ``password`` is
hidden whatever it looks like), it never vouches for a value (a private key under
``hub_public_key`` is still hidden).  What is removed:

- PEM blocks (``-----BEGIN ... -----END ...-----``): private keys of any kind, and certificates
  too (they are noise in a report and a block may be mislabelled);
- base64 data (one line, or wrapped) whose decoded text holds any secret of this list: a
  kubeconfig's ``client-key-data``, a Kubernetes Secret's ``data``, base64 of base64...;
- JSON Web Tokens, ``age`` secret keys;
- ``Authorization:`` header values, ``Bearer``/``Basic``/``Digest``/``Negotiate`` credentials;
- credentials in URLs: ``https://user:pass@host`` -> ``https://user:[redacted]@host``, and a
  token used as the user (``https://<token>@host``);
- ``PrivateKey = ...``, ``password: ...``-style assignments in free text; the value runs to its
  closing quote when quoted, else to the end of the line (so ``password: two words here`` goes
  whole);
- WireGuard keys (32 bytes, base64: 43 characters and ``=``): in free text, unless the text just
  before says it is a *public* key; under a key named like a public key, when the bytes carry the
  X25519 clamping that ``wg genkey`` applies (a real public key looks like that 1 time in 16:
  then it is hidden too, never leaked); always the first key of a ``wg show dump`` interface line;
- the value of any key named like ``*private*``, ``*passphrase*``, ``*secret*``, ``*password*``,
  ``*token*``, ``*credential*``, ``*api_key*``, ``authorization``, ``cookie``.  Under such a key
  only booleans, numbers and a few configuration words (``yes``, ``no``, ``disabled``...) are
  kept, so that evidence such as ``PasswordAuthentication: no`` still reads.

:func:`find_secrets` is the last line of defence: the writers refuse to write an output in which
it still finds something that looks like a private key.
"""

from __future__ import annotations

import base64
import binascii
import re
from functools import lru_cache
from typing import Any

REDACTED = "[redacted]"

SENSITIVE_KEY = re.compile(
    r"private|passphrase|secret|passw(or)?d|passwd|token|credential|api[_-]?key|psk|preshared"
    r"|^(proxy[_-]?)?authorization$|^(set[_-]?)?cookie$",
    re.I,
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
_WG = r"[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]="
# 32 bytes in base64: 42 free characters, one of 16 and "=".
WG_KEY = re.compile(rf"(?<![A-Za-z0-9+/]){_WG}(?![A-Za-z0-9+/=])")
WG_PUBLIC_BEFORE = re.compile(r"(public[ _-]?key|pubkey|peer)[\"']?\s*[=:]?\s*[\"']?$", re.I)
# `wg show <if> dump`, interface line: [ifname TAB] private-key TAB public-key TAB listen-port TAB fwmark
WG_DUMP = re.compile(rf"(?m)^((?:[A-Za-z0-9_.@-]+\t)?)({_WG})(\t(?:{_WG}|\(none\))\t\d+\t)")
AGE_KEY = re.compile(r"AGE-SECRET-KEY-1[0-9A-Za-z]{20,}")
JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
# base64 (standard or URL-safe) long enough to hold more than a WireGuard key; and wrapped base64
# (lines of 40+ characters, the last one shorter), as `base64` and PEM bodies print it.
B64_RUN = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{60,}={0,2}(?![A-Za-z0-9+/=_-])")
B64_WRAPPED = re.compile(
    r"(?<![A-Za-z0-9+/])(?:[A-Za-z0-9+/]{40,}[ \t]*\r?\n[ \t]*)+[A-Za-z0-9+/]{4,}={0,2}(?![A-Za-z0-9+/=])"
)
AUTH_HEADER = re.compile(r"(?P<h>\b(?:proxy-)?authorization[\"']?[ \t]*[:=][ \t]*[\"']?)(?P<v>[^\r\n\"']+)", re.I)
AUTH_SCHEME = re.compile(r"\b(?P<s>bearer|basic|digest|negotiate)[ \t]+(?P<v>[A-Za-z0-9._~+/=-]{8,})", re.I)
URL_CREDS = re.compile(r"(?P<pre>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^\s:/?#@\[\]\"'<>]*):(?P<pw>[^\s/?#\"'<>]*)@")
URL_TOKEN_USER = re.compile(r"(?P<pre>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[A-Za-z0-9_-]{20,})@")
ASSIGNMENT = re.compile(
    r"(?<![/A-Za-z0-9_.-])"
    r"(?P<k>[A-Za-z0-9_.-]*(?:private[ _-]?key|passphrase|secret|passw(?:or)?d|passwd|token|api[_-]?key)[A-Za-z0-9_.-]*)"
    r"(?P<kq>[\"']?)(?P<sep>[ \t]*(?:=|:)[ \t]*)"
    r"(?:(?P<q>[\"'])(?P<qv>(?:\\.|[^\\\r\n])*?)(?:(?P=q)|$)"  # quoted: to the closing quote (or the line's end)
    r"|(?P<block>[|>][+-]?[ \t]*\r?\n(?:[ \t]+[^\r\n]*(?:\r?\n|$))+)"  # a YAML block scalar
    r"|(?P<v>[^\r\n]*))",  # unquoted: to the end of the line
    re.I | re.M,
)

_HINT = re.compile(
    r"-----BEGIN|AGE-SECRET|private|passphrase|secret|passw|passwd|token|api[_-]?key|bearer|basic|authoriz|://|eyJ",
    re.I,
)
_MAX_DEPTH = 3  # base64 inside base64 inside base64


def _b64_decode(blob: str) -> bytes | None:
    t = re.sub(r"\s+", "", blob)
    urlsafe = "-" in t or "_" in t
    if urlsafe and ("+" in t or "/" in t):
        return None
    t = t.rstrip("=")
    if len(t) % 4 == 1:
        return None
    t += "=" * (-len(t) % 4)
    try:
        return base64.b64decode(t, altchars=b"-_" if urlsafe else None, validate=True)
    except (binascii.Error, ValueError):
        return None


def _decoded_text(blob: str) -> str | None:
    """The text a base64 blob encodes, or None (not base64, or not text)."""
    data = _b64_decode(blob)
    if not data:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    printable = sum(c.isprintable() or c in "\r\n\t" for c in text)
    return text if printable >= 0.95 * len(text) else None


def _b64_hides_secret(blob: str, depth: int) -> bool:
    if depth >= _MAX_DEPTH:
        return False
    text = _decoded_text(blob)
    return text is not None and _redact_text(text, depth=depth + 1) != text


def _clamped(wg_key: str) -> bool:
    """Whether 32 base64 bytes carry X25519's private-key clamping (as ``wg genkey`` writes them)."""
    try:
        b = base64.b64decode(wg_key, validate=True)
    except (binascii.Error, ValueError):
        return False
    return len(b) == 32 and b[0] & 7 == 0 and b[31] & 0xC0 == 0x40


def _safe_value(v: str) -> bool:
    w = v.strip().rstrip(",;").strip().lower()
    return w in SAFE_WORDS or w.replace(".", "").isdigit() or w.startswith("[redacted")


def _tokenish(v: str) -> bool:
    return any(c.isdigit() or c in "._~+/=-" for c in v)


def _redact_text(s: str, public: bool = False, depth: int = 0) -> str:
    """``s`` with every secret replaced. ``public``: the text sits under a key named like a public
    key, so a bare WireGuard-shaped key may stay (unless its bytes say it is a private key)."""
    if len(s) < 44 and not _HINT.search(s):
        return s  # fast path: too short for a key, no word that introduces a secret
    s = PEM_BLOCK.sub(lambda m: f"[redacted PEM block: {m.group(1).strip()}]", s)

    def b64(m: re.Match) -> str:
        return "[redacted base64 data]" if _b64_hides_secret(m.group(0), depth) else m.group(0)

    s = B64_WRAPPED.sub(b64, s)
    s = B64_RUN.sub(b64, s)
    s = AGE_KEY.sub(REDACTED, s)
    s = JWT.sub(REDACTED, s)

    def header(m: re.Match) -> str:
        words = m.group("v").split()
        if len(words) == 1 and _safe_value(words[0]):
            return m.group(0)
        scheme = words[0] + " " if len(words) > 1 and words[0].isalpha() else ""
        return f"{m.group('h')}{scheme}{REDACTED}"

    s = AUTH_HEADER.sub(header, s)
    s = AUTH_SCHEME.sub(lambda m: f"{m.group('s')} {REDACTED}" if _tokenish(m.group("v")) and
                        not m.group("v").startswith("[redacted") else m.group(0), s)
    s = URL_CREDS.sub(lambda m: f"{m.group('pre')}{m.group('user')}:{REDACTED}@", s)
    s = URL_TOKEN_USER.sub(lambda m: f"{m.group('pre')}{REDACTED}@" if _tokenish(m.group("user")) else m.group(0), s)

    def assignment(m: re.Match) -> str:
        head = f"{m.group('k')}{m.group('kq')}{m.group('sep')}"
        if m.group("q") is not None:
            q, v = m.group("q"), m.group("qv")
            if _safe_value(v):
                return m.group(0)
            return f"{head}{q}{REDACTED}{q}"
        if m.group("block") is not None:
            return f"{head}{REDACTED}\n"
        v = m.group("v")
        if _safe_value(v):
            return m.group(0)
        return f"{head}{REDACTED}"

    s = ASSIGNMENT.sub(assignment, s)
    s = WG_DUMP.sub(lambda m: f"{m.group(1)}{REDACTED}{m.group(3)}", s)

    def wg(m: re.Match) -> str:
        if _clamped(m.group(0)):
            return REDACTED
        if public:
            return m.group(0)
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
        return _redact_text(value, public=bool(key and PUBLIC_KEY_NAME.search(key)))
    return value


def find_secrets(text: str) -> list[str]:
    """Things in a rendered output that still look like private keys (should be none)."""
    found = [m.group(0) for m in PEM_MARKER.finditer(text)]
    found += [m.group(0)[:24] + "..." for m in AGE_KEY.finditer(text)]
    for rx in (B64_WRAPPED, B64_RUN):
        for m in rx.finditer(text):
            decoded = _decoded_text(m.group(0))
            if decoded is not None and PEM_MARKER.search(decoded):
                found.append("base64 of " + PEM_MARKER.search(decoded).group(0))
    return found


class SecretLeak(RuntimeError):
    """A rendered output still contains something that looks like a secret."""
