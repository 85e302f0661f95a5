"""The HTML report: one self-contained page (no script, no network) drawn from the JSON
report, readable opened from disk.

It shows the verdict, a timeline of phases, the hosts' phases, the failing tests, what
non-idempotent tasks changed and the drift: grouped by comparison, heading and kind,
each content diff in a collapsed block. What is equal is not shown.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from tdi import secrets
from tdi.state.kinds import MEANING

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:0 16px 40px;
color:#1f2328}
h1{margin:18px 0 4px}h2{border-bottom:1px solid #d0d7de;padding-bottom:4px;margin-top:28px}
.passed{color:#1a7f37}.failed{color:#cf222e}.skipped{color:#6e7781}
.badge{border-radius:10px;padding:1px 8px;font-size:12px;color:#fff;white-space:nowrap}
.b-passed{background:#1a7f37}.b-failed{background:#cf222e}.b-skipped{background:#6e7781}
.k{border-radius:4px;padding:0 6px;font-size:12px;border:1px solid #8c959f;white-space:nowrap}
table{border-collapse:collapse;width:100%;margin:8px 0;table-layout:fixed}
td,th{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}code{font-size:12px;overflow-wrap:anywhere}
.bar-row{display:flex;align-items:center;margin:2px 0}
.bar-label{width:230px;font-size:12px;flex:none}.bar-track{position:relative;flex:1;height:16px}
.bar{position:absolute;height:16px;border-radius:3px;background:#54aeff;font-size:11px;
color:#fff;padding-left:3px;box-sizing:border-box;white-space:nowrap;min-width:2px}
.bar.converge{background:#0969da}.bar.idempotence{background:#8250df}
.bar.verify{background:#1a7f37}.bar.parity{background:#bf8700}.bar.create{background:#57606a}
.bar.capture{background:#9a6700}.bar.rollback{background:#1b7c83}.bar.keep{background:#57606a}.bar.probes{background:#6639ba}
.down{position:absolute;height:16px;background:#cf222e;min-width:3px;opacity:.85}
pre.diff{background:#f6f8fa;padding:8px;overflow-x:auto;font-size:12px;margin:4px 0}
.add{color:#1a7f37}.del{color:#cf222e}.hunk{color:#8250df}
.muted{color:#6e7781}details{margin:4px 0}
"""


OPEN_LINES = 12  # diffs up to this long are shown open


def render(data: Mapping[str, Any], page: Path) -> str:
    """The page for the JSON report ``data``; log links are relative to ``page``."""
    result = str(data["result"])
    body = [
        f"<h1>tdi: <span class={result}>{escape(result)}</span></h1>",
        f"<p class=muted>Upgrade from: {escape(str(data.get('upgrade_source') or '-'))}</p>",
        *_lint(data.get("lint")),
        *_plan(str(data.get("plan") or ""), data["states"]),
        *_timeline(data.get("timeline", []), data.get("downtime", [])),
        *_hosts(data["states"]),
        *_failing_tests(data),
        *_idempotence(data["states"]),
        *_drift(data["comparisons"]),
        *_rollback(data.get("rollback", [])),
        *_downtime(data.get("downtime", [])),
        *_logs(data.get("logs", {}), page),
    ]
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>tdi: {escape(result)}</title><style>{CSS}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


def write(data: Mapping[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(secrets.scrub(render(data, path)), encoding="utf-8")


def _badge(status: str) -> str:
    return f"<span class='badge b-{escape(status)}'>{escape(status)}</span>"


def _timeline(spans: list[dict[str, Any]], downtime: Sequence[Mapping[str, Any]] = ()) -> list[str]:
    if not spans:
        return []
    end = max(s["start"] + s["seconds"] for s in spans) or 1.0
    out = [f"<h2>Timeline</h2><p class=muted>{end:.1f} s from the first phase to the last</p>"]
    for s in spans:
        left, width = 100 * s["start"] / end, 100 * s["seconds"] / end
        label = f"{s['phase']} · {s['who']}"
        out.append(
            f"<div class=bar-row><div class=bar-label>{escape(label)}</div><div class=bar-track>"
            f"<div class='bar {escape(s['phase'])}' style='left:{left:.2f}%;width:{width:.2f}%'>"
            f"{s['seconds']:.1f} s</div>{_marks(s, downtime, end)}</div></div>"
        )
    return out


def _plan(headline: str, states: Mapping[str, Any]) -> list[str]:
    """The production change plan, first: per upgrade node, what its converge changed."""
    plans = {name: s["changes"] for name, s in states.items() if s.get("changes")}
    if not plans:
        return []
    out = [f"<h2>Plan: {escape(headline)}</h2>"]
    for name, plan in plans.items():
        out.append(f"<h3>{escape(name)}</h3>")
        if plan["error"]:
            out.append(f"<p class=muted>{escape(plan['error'])}</p>")
        if plan.get("unmanaged"):
            keys = ", ".join(c["key"] for c in plan["unmanaged"][:12])
            out.append(
                f"<p class=muted>{len(plan['unmanaged'])} changes no task made (a daemon, "
                f"boot history) are left out: {escape(keys)}</p>"
            )
        if plan["services"] is None:
            out.append("<p class=muted>Restarts not known: systemd is not PID 1 here.</p>")
        rows = [
            ("service", f"{s['unit']}", " and ".join(s["actions"]), "")
            for s in plan["services"] or []
        ]
        rows += [("handler", h, "ran", "") for h in plan["handlers"]]
        rows += [
            (c["category"], c["key"], _change(c), "; ".join(c["tasks"])) for c in plan["changes"]
        ]
        if rows:
            out.append("<table><tr><th>what</th><th>name</th><th>change</th><th>by task</th></tr>")
            out += [
                "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>"
                for row in rows
            ]
            out.append("</table>")
        for c in plan["changes"]:
            title = f"<code>{escape(c['key'])}</code>"
            out += _details(title, c["content_diff"], c["content_notes"])
        for task in plan["tasks"]:
            out += _details(f"task <code>{escape(task['task'])}</code>", task["diff"], [])
        if not rows and not plan["tasks"]:
            out.append("<p class=muted>Nothing changed.</p>")
    return out


def _change(c: Mapping[str, Any]) -> str:
    """A change's summary without what the row's other cells say: `upgraded 1.0 → 2.0`."""
    return str(c["summary"]).replace(f" {c['category']} {c['key']}", "", 1)


def _marks(span: Mapping[str, Any], downtime: Sequence[Mapping[str, Any]], end: float) -> str:
    """The downtime windows of ``span``'s side, drawn on its converge bar."""
    if span["phase"] != "converge":
        return ""
    out = []
    for d in (d for d in downtime if d["side"] == span["who"]):
        for w in d["windows"]:
            left, width = 100 * (span["start"] + w["start"]) / end, 100 * w["seconds"] / end
            title = f"{d['probe']} down {w['seconds']:.2f} s at {w['start']:.2f} s: {w['why']}"
            out.append(
                f"<div class=down title='{escape(title)}' "
                f"style='left:{left:.2f}%;width:{width:.2f}%'></div>"
            )
    return "".join(out)


def _downtime(downtime: Sequence[Mapping[str, Any]]) -> list[str]:
    """Each probe on each upgrade side, a row per window and what ran during it."""
    if not downtime:
        return []
    head = "<tr><th>probe</th><th>side</th><th>window</th><th>during</th><th>why</th></tr>"
    rows = []
    for d in downtime:
        cells = f"<td><code>{escape(d['probe'])}</code> {_badge(d['result'])}</td>"
        cells += f"<td>{escape(d['side'])}</td>"
        if not d["windows"]:
            rows.append(f"<tr>{cells}<td>none in {d['polls']} polls</td><td></td><td></td></tr>")
        for w in d["windows"]:
            during = [*(f"handler {h}" for h in w["handlers"]), *w["tasks"]]
            rows.append(
                f"<tr>{cells}<td>{w['seconds']:.2f} s from {w['start']:.2f} s</td>"
                f"<td>{'<br>'.join(escape(t) for t in during)}</td><td>{escape(w['why'])}</td></tr>"
            )
    return ["<h2>Downtime</h2><table>", head, *rows, "</table>"]


def _lint(lint: Mapping[str, Any] | None) -> list[str]:
    """ansible-lint's verdict at its profile, a row per finding."""
    if not lint:
        return []
    head = "<tr><th>file</th><th>rule</th><th>level</th><th>message</th></tr>"
    rows = [
        f"<tr><td><code>{escape(f['file'])}:{f['line']}</code></td><td>{escape(f['rule'])}</td>"
        f"<td>{escape(f['level'])}</td><td>{escape(f['message'])}</td></tr>"
        for f in lint["findings"]
    ]
    title = f"<h2>Lint {_badge(lint['result'])}</h2>"
    about = f"<p class=muted>ansible-lint, profile {escape(lint['profile'])}</p>"
    return [title, about, *(["<table>", head, *rows, "</table>"] if rows else [])]


def _hosts(states: Mapping[str, Any]) -> list[str]:
    rebooted = any(s.get("reboot", "skipped") != "skipped" for s in states.values())
    phases = ["converge", "idempotence", "verify", *(["reboot"] if rebooted else [])]
    rows = [
        f"<tr><td>{escape(name)}</td>"
        + "".join(f"<td>{_badge(s[p])}</td>" for p in phases)
        + f"<td>{s['tests']['passed']} passed, {s['tests']['failed']} failed</td>"
        + f"<td>{escape(s.get('error') or '')}{_journal(s.get('journal') or [])}</td></tr>"
        for name, s in states.items()
    ]
    head = "<tr><th>host</th>" + "".join(f"<th>{p}</th>" for p in phases)
    return ["<h2>Hosts</h2><table>", head + "<th>tests</th><th>error</th></tr>", *rows, "</table>"]


def _journal(lines: Sequence[str]) -> str:
    """A unit's journal, under the error that names it."""
    if not lines:
        return ""
    return f"<details><summary>journal</summary><pre>{escape(chr(10).join(lines))}</pre></details>"


def _failing_tests(data: Mapping[str, Any]) -> list[str]:
    found = [(name, f) for name, s in data["states"].items() for f in s.get("failures", [])]
    found += [(c["side"] + "/" + c["host"], f) for c in data["comparisons"] for f in c["failures"]]
    if not found:
        return []
    items = [
        f"<li><code>{escape(f['id'])}</code> on {escape(where)}"
        f"<pre class=diff>{escape(f['message'])}</pre>"
        + "".join(_details("what differs", f.get("diff", ""), []))
        + "</li>"
        for where, f in found
    ]
    return ["<h2>Failing tests</h2><ul>", *items, "</ul>"]


def _idempotence(states: Mapping[str, Any]) -> list[str]:
    out = []
    for name, s in states.items():
        if s["idempotence"] != "failed" or not s["changed_tasks"]:
            continue
        out.append(f"<h3>{escape(name)}: not idempotent</h3>")
        for task in s["changed_tasks"]:
            out += _details(f"<code>{escape(task['task'])}</code> changed", task["diff"], [])
    return ["<h2>Idempotence</h2>", *out] if out else []


def _drift(comparisons: list[dict[str, Any]]) -> list[str]:
    out = ["<h2>Drift</h2>"]
    kinds: set[str] = set()
    quiet = [c for c in comparisons if not c["differences"] and not c["error"]]
    if quiet:
        names = ", ".join(f"{c['side']}/{c['host']}" for c in quiet)
        out.append(f"<p class=muted>No difference: {escape(names)}.</p>")
    for c in comparisons:
        if c["error"]:
            out.append(f"<h3>{escape(c['side'])}/{escape(c['host'])}</h3>")
            out.append(f"<p class=failed>{escape(c['error'])}</p>")
        if c["differences"]:
            out += _comparison(c)
            kinds |= {d["kind"] for d in c["differences"]}
    return out + _legend(kinds) if len(out) > 1 else []


def _rollback(rollbacks: list[dict[str, Any]]) -> list[str]:
    """The previous release applied again on each upgraded host: what it did not undo."""
    if not rollbacks:
        return []
    out = ["<h2>Rollback</h2>"]
    kinds: set[str] = set()
    for r in rollbacks:
        out.append(
            f"<h3>{escape(r['key'])} {_badge(r['result'])}</h3><p class=muted>from "
            f"{escape(r['from'])}, the previous release {escape(r['commit'][:12])} applied "
            "again, against the state it left</p>"
        )
        if r["error"]:
            out.append(f"<p class=failed>{escape(r['error'])}</p>")
        elif not r["differences"]:
            out.append("<p class=muted>No difference: the rollback is clean.</p>")
        by_kind: dict[str, list[dict[str, Any]]] = {}
        for d in r["differences"]:
            by_kind.setdefault(d["kind"], []).append(d)
        for kind, group in by_kind.items():
            out.append(f"<h4><span class=k>{escape(kind)}</span></h4>")
            out.append(
                "<table><tr><th>key</th><th>baseline</th><th>rollback</th><th>tasks</th></tr>"
            )
            out += [_row({**d, "fresh": d["baseline"], "upgrade": d["rollback"]}) for d in group]
            out.append("</table>")
        kinds |= set(by_kind)
    return out + _legend(kinds)


def _comparison(c: Mapping[str, Any]) -> list[str]:
    out = [f"<h3>{escape(c['side'])}/{escape(c['host'])} {_badge(c['result'])}</h3>"]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for d in sorted(c["differences"], key=lambda d: (d["heading"], d["kind"], d["key"])):
        groups.setdefault((d["heading"], d["kind"]), []).append(d)
    for (heading, kind), group in groups.items():
        out.append(f"<h4>{escape(heading)} · <span class=k>{escape(kind or '-')}</span></h4>")
        out.append("<table><tr><th>key</th><th>fresh</th><th>upgrade</th><th>tasks</th></tr>")
        out += [_row(d) for d in group]
        out.append("</table>")
    return out


def _row(d: Mapping[str, Any]) -> str:
    allowed = (
        f"<br><span class=muted>allowed: {escape(d['allowed'])}</span>" if d["allowed"] else ""
    )
    content = "".join(_details("content", d.get("content_diff", ""), d.get("content_notes", [])))
    cells = [
        f"<code>{escape(d['key'])}</code>{allowed}",
        f"<code>{_fields(d['fresh'])}</code>",
        f"<code>{_fields(d['upgrade'])}</code>",
        "<br>".join(escape(t) for t in d["tasks"]),
    ]
    row = "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"
    # The content diff spans the table's width, under its row.
    return row + (f"<tr><td colspan=4>{content}</td></tr>" if content else "")


def _fields(value: object) -> str:
    """A record as one ``field: value`` line each; long digests cut to 12 characters."""
    if value is None:
        return "-"
    if not isinstance(value, Mapping):
        return escape(str(value))
    lines = []
    for key, item in value.items():
        text = str(item)
        if len(text) > 24 and all(c in "0123456789abcdef" for c in text):
            text = text[:12] + "…"
        lines.append(f"{escape(str(key))}: {escape(text)}")
    return "<br>".join(lines)


def _details(title: str, text: str, notes: Iterable[str]) -> list[str]:
    notes = list(notes)
    if not text and not notes:
        return []
    said = "".join(f" <span class=muted>({escape(n)})</span>" for n in notes)
    body = f"<pre class=diff>{_colored(text)}</pre>" if text else ""
    # A short diff is open: it is what the reader came for. A long one waits for a click.
    opened = " open" if text and text.count("\n") <= OPEN_LINES else ""
    return [f"<details{opened}><summary>{title}{said}</summary>{body}</details>"]


# A diff line's class by how it begins, the first that matches: a file header has none.
LINE_CLASSES = (("@@", "hunk"), ("+++", ""), ("---", ""), ("+", "add"), ("-", "del"))


def _colored(diff: str) -> str:
    out = []
    for line in diff.splitlines():
        css = next((name for start, name in LINE_CLASSES if line.startswith(start)), "")
        out.append(f"<span class={css}>{escape(line)}</span>" if css else escape(line))
    return "\n".join(out)


def _legend(kinds: set[str]) -> list[str]:
    rows = [
        f"<tr><td><span class=k>{escape(k)}</span></td><td>{escape(MEANING[k])}</td></tr>"
        for k in MEANING
        if k in kinds
    ]
    return ["<h3>Kinds</h3><table>", *rows, "</table>"] if rows else []


def _logs(logs: Mapping[str, str], page: Path) -> list[str]:
    if not logs:
        return []
    items = [
        f"<li><a href='{escape(_link(path, page))}'>{escape(name)}</a></li>"
        for name, path in logs.items()
    ]
    return ["<h2>Logs</h2><ul>", *items, "</ul>"]


def _link(path: str, page: Path) -> str:
    """A link from the page's directory to ``path``: relative, so it works from disk."""
    return os.path.relpath(Path(path).resolve(), page.resolve().parent)
