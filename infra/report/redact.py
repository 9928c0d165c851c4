"""Keep secrets out of reports: the one redaction of dcops, :mod:`infra.redact`.

The report passes every string it takes in (evidence, reasons, stack outputs) through
:func:`redact`, and every writer checks its output with :func:`find_secrets`.  The check
results are redacted the same way before they are written (``checks.result.write_results``),
so both use the function defined in :mod:`infra.redact` (see there for what is removed).
"""

from ..redact import (  # noqa: F401
    PEM_BLOCK,
    PEM_MARKER,
    PUBLIC_KEY_NAME,
    REDACTED,
    SAFE_WORDS,
    SENSITIVE_KEY,
    WG_KEY,
    SecretLeak,
    find_secrets,
    redact,
)
