# Stdout callback used by `dcops wan apply --engine ansible`: one JSON object per line
# (prefixed "@dcops ") for every task result, so dcops can show progress per host and the
# same summary as for pyinfra. Diffs are produced in check/diff mode. Nothing secret is
# emitted: the managed files hold no secrets and the key pass reports public keys only.
from __future__ import annotations

DOCUMENTATION = """
    name: dcops_events
    type: stdout
    short_description: JSON lines of task results for dcops
    description:
        - One JSON object per line, prefixed with "@dcops ", for each task result, handler,
          unreachable host and the final stats (with the public keys set by set_stats).
"""

import difflib
import json
import sys

from ansible.plugins.callback import CallbackBase

PREFIX = "@dcops "
MAX_DIFF = 20000


def _unified(d: dict) -> str:
    if not isinstance(d, dict):
        return ""
    if "prepared" in d:
        return str(d["prepared"])
    before, after = d.get("before", ""), d.get("after", "")
    if not isinstance(before, str) or not isinstance(after, str):
        before = json.dumps(before, indent=1, sort_keys=True, default=str) if before != "" else ""
        after = json.dumps(after, indent=1, sort_keys=True, default=str) if after != "" else ""
    if before == after:
        return ""
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            str(d.get("before_header", "before")),
            str(d.get("after_header", "after")),
        )
    )


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "dcops_events"

    def __init__(self):
        super().__init__()
        self._play = ""

    # ------------------------------------------------------------------ output
    def _emit(self, **ev):
        sys.stdout.write(PREFIX + json.dumps(ev, ensure_ascii=False, default=str) + "\n")
        sys.stdout.flush()

    def _items(self, res: dict):
        if "results" in res and isinstance(res["results"], list):
            return res["results"]
        return [res]

    def _result(self, result, status: str):
        res = result._result
        task = result._task
        changed_items, diffs, drift, msgs = [], [], [], []
        for r in self._items(res):
            if not isinstance(r, dict):
                continue
            label = r.get("_ansible_item_label", r.get("item"))
            if isinstance(label, dict):
                label = label.get("path") or label.get("name") or ""
            if r.get("changed"):
                changed_items.append(str(label) if label is not None else task.get_name())
            dl = r.get("diff")
            dl = dl if isinstance(dl, list) else ([dl] if dl else [])
            for d in dl:
                u = _unified(d)
                if u:
                    diffs.append(u[:MAX_DIFF])
            # converge checks print their drift on stdout
            if r.get("changed") and r.get("stdout") and "check" in task.get_name().lower():
                drift.append(f"{label}:\n{r['stdout'][:MAX_DIFF]}")
            if status == "failed" and (r.get("failed") or r is res):
                m = r.get("msg") or ""
                if r.get("stderr"):
                    m = (m + "\n" if m else "") + r["stderr"]
                if m:
                    msgs.append((f"{label}: " if label and r is not res else "") + str(m).strip()[:2000])
        self._emit(
            ev="task",
            play=self._play,
            host=result._host.get_name(),
            task=task.name or task.get_name(),
            role=task._role.get_name() if task._role else None,
            handler=type(task).__name__ == "Handler",
            status=status,
            changed=bool(res.get("changed")),
            items=changed_items,
            diffs=diffs + drift,
            msg="\n".join(msgs)[:4000] if msgs else (str(res.get("msg", ""))[:4000] if status != "ok" else ""),
        )

    # --------------------------------------------------------------- callbacks
    def v2_playbook_on_play_start(self, play):
        self._play = play.get_name()
        self._emit(ev="play", name=self._play)

    def v2_runner_on_ok(self, result):
        self._result(result, "changed" if result._result.get("changed") else "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result(result, "ok" if ignore_errors else "failed")

    def v2_runner_on_unreachable(self, result):
        self._emit(
            ev="task",
            play=self._play,
            host=result._host.get_name(),
            task=result._task.get_name(),
            role=None,
            status="unreachable",
            changed=False,
            items=[],
            diffs=[],
            msg=str(result._result.get("msg", "unreachable")).strip()[:2000],
        )

    def v2_runner_on_skipped(self, result):
        pass

    def v2_playbook_on_no_hosts_remaining(self):
        self._emit(ev="no_hosts_remaining")

    def v2_playbook_on_stats(self, stats):
        hosts = {}
        for h in sorted(stats.processed.keys()):
            s = stats.summarize(h)
            hosts[h] = {k: s.get(k, 0) for k in ("ok", "changed", "failures", "unreachable", "skipped", "rescued", "ignored")}
        custom = {h: v for h, v in (stats.custom or {}).items() if h != "_run"}
        self._emit(ev="stats", hosts=hosts, custom=custom)

    # Warnings and deprecations go to stderr so stdout stays parseable.
    def v2_on_any(self, *args, **kwargs):
        pass
