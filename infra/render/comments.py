"""The one way a comment gets into a generated config file.

Every comment line the renderers write (WireGuard's ``wg0.conf``, ``nftables.conf``, the
sshd drop-in, chrony, rsyslog, logrotate, systemd drop-ins and environment files, the
Prometheus YAML) comes from :func:`comment`; every nft rule comment from
:func:`nft_rule_comment`. Names from the province file are validated (one line, visible
characters, bounded length: :mod:`infra.model`), and these helpers make a comment inert
even if a value slipped past validation:

- a comment is one line: every control, format (bidi, zero-width), line-separator,
  paragraph-separator, surrogate, private-use or unassigned character is replaced by
  ``?``, so nothing in it can start a new line in any of these languages (YAML also ends
  a comment at U+0085, U+2028 and U+2029; Python's ``splitlines`` at more);
- a comment never ends with a backslash: systemd (units and environment files) joins a
  line ending in ``\\`` with the next one, even after ``#``;
- it is cut to :data:`COMMENT_MAX` characters;
- an nft rule comment is a double-quoted nft string, which has no escapes: ``"`` becomes
  ``'`` and the text is cut to nft's 128 bytes.
"""

from __future__ import annotations

from ..model import refused_chars

COMMENT_MAX = 240
NFT_COMMENT_BYTES = 127  # nft: "comment too long, 128 characters maximum allowed" (the NUL counts)


def _inert(text: str) -> str:
    bad = {i for i, _, _ in refused_chars(text)}
    out = "".join("?" if i in bad else ch for i, ch in enumerate(text))
    out = out.rstrip()
    if len(out) > COMMENT_MAX:
        out = out[: COMMENT_MAX - 3].rstrip() + "..."
    while out.endswith("\\"):
        out = out[:-1].rstrip() + "/"
    return out


def comment(text: str) -> str:
    """One ``# ...`` comment line (no newline at the end) holding ``text`` inertly."""
    body = _inert(text)
    return f"# {body}" if body else "#"


def comment_block(*lines: str) -> str:
    """Several comment lines, each through :func:`comment`, each ending in a newline."""
    return "".join(comment(line) + "\n" for line in lines)


def nft_rule_comment(text: str) -> str:
    """``comment "..."`` for an nft rule or set element."""
    body = _inert(text).replace('"', "'")
    raw = body.encode("utf-8")
    if len(raw) > NFT_COMMENT_BYTES:
        body = raw[:NFT_COMMENT_BYTES].decode("utf-8", "ignore")
    return f'comment "{body}"'
