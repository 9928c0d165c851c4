"""What the Pulumi Python SDK does per resource that dcops trims (the program calls :func:`tune`).

Measured on the full province (147 resources, issue 14):

- **Stack traces.** For every resource the SDK sends the whole Python stack of its constructor call,
  which the engine keeps in the state: 18 frames, of which 7 are dcops's code and the rest the
  language host's shim, ``runpy``, asyncio and the SDK, the same for every resource. That was
  200 KiB of the 785 KiB checkpoint. :func:`trim_stack_traces` keeps the frames of the project's
  own files (outside ``.venv``): where in dcops each object is declared stays in the state, the
  first frame (the source position Pulumi shows) is unchanged.
- **Debug messages.** ``pulumi.log.debug`` is a blocking gRPC call to the engine per message, and
  the SDK sends several per resource ("registering resource ...", "resource registration
  successful ..."), which the CLI shows only with ``--debug``. :func:`quiet_debug_log` drops them
  unless ``DCOPS_PULUMI_SDK_DEBUG=1``. Info, warnings and errors are untouched.

Both are guarded: if the SDK no longer has what is patched, nothing is changed (the pinned SDK is
checked by tests/test_sdk_tuning.py).
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_DEBUG = "DCOPS_PULUMI_SDK_DEBUG"


def _project_uri_prefix(root: Path) -> tuple[str, str]:
    root = root.resolve()
    return root.as_uri() + "/", (root / ".venv").as_uri() + "/"


def trim_stack_traces(root: Path) -> bool:
    """Keep only the project's own frames (``root``, not its ``.venv``) in the stack trace the SDK
    records for each resource. Returns whether the SDK was patched."""
    try:
        from pulumi.runtime import resource as sdk_resource
        from pulumi.runtime.proto import source_pb2
    except ImportError:
        return False
    orig = getattr(sdk_resource, "_get_stack_trace", None)
    if orig is None or getattr(orig, "_dcops_trimmed", False):
        return False
    inside, venv = _project_uri_prefix(root)

    def _get_stack_trace() -> "source_pb2.StackTrace":
        full = orig()
        frames = [f for f in full.frames
                  if f.HasField("pc") and f.pc.uri.startswith(inside) and not f.pc.uri.startswith(venv)]
        if not frames or frames[0] != full.frames[0]:
            return full  # not declared by the project's code (the SDK's own Stack resource): left as it was
        return source_pb2.StackTrace(frames=frames)

    _get_stack_trace._dcops_trimmed = True  # type: ignore[attr-defined]
    _get_stack_trace._dcops_orig = orig  # type: ignore[attr-defined]
    sdk_resource._get_stack_trace = _get_stack_trace
    return True


def quiet_debug_log() -> bool:
    """Drop the SDK's debug messages (one blocking RPC each) unless ``DCOPS_PULUMI_SDK_DEBUG=1``."""
    if os.environ.get(ENV_DEBUG, "") not in ("", "0", "false"):
        return False
    try:
        import pulumi.log as sdk_log
    except ImportError:
        return False
    if not callable(getattr(sdk_log, "debug", None)) or getattr(sdk_log.debug, "_dcops_quiet", False):
        return False

    def debug(msg, resource=None, stream_id=None, ephemeral=None) -> None:  # noqa: ARG001 - the SDK's signature
        return None

    debug._dcops_quiet = True  # type: ignore[attr-defined]
    debug._dcops_orig = sdk_log.debug  # type: ignore[attr-defined]
    sdk_log.debug = debug
    return True


ENV_OFF = "DCOPS_PULUMI_SDK_TUNING"


def tune(root: Path) -> dict[str, bool]:
    """Both of the above (neither with ``DCOPS_PULUMI_SDK_TUNING=0``: the SDK as it comes, which
    ``dcops bench --cases provision`` measures beside); returns which applied."""
    if os.environ.get(ENV_OFF, "") in ("0", "false", "off"):
        return {"stack_traces": False, "debug_log": False}
    return {"stack_traces": trim_stack_traces(root), "debug_log": quiet_debug_log()}
