"""The stack file as text a person can read and edit: a header saying what was inferred, then the sections."""

from __future__ import annotations

import textwrap
from typing import Any

import yaml

from chaos.compose.convert import Imported

WIDTH = 110


class Block(dict):  # type: ignore[type-arg]
    """A mapping always written one key per line (a service's environment)."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(Block, lambda dumper, data: dumper.represent_mapping("tag:yaml.org,2002:map", data.items(),
                                                                             flow_style=False))


def _dump(value: Any, indent: int, flow: bool | None = None) -> str:
    """YAML of ``value``: block mappings, short leaf lists and mappings in flow style."""
    text = yaml.dump(value, Dumper=_Dumper, sort_keys=False, default_flow_style=flow, width=WIDTH, allow_unicode=True)
    return textwrap.indent(text, " " * indent)


def _comment(lines: list[str], indent: int = 0) -> str:
    out = []
    for line in lines:
        wrapped = textwrap.wrap(line, WIDTH - indent - 4, subsequent_indent="  ", break_on_hyphens=False) or [""]
        out += [" " * indent + "# " + part for part in wrapped]
    return "\n".join(out) + "\n" if out else ""


def render(imported: Imported, command: str) -> str:
    stack = imported.stack
    header = [f"{stack['description']}: `{command}`.", "Edit it freely; importing again overwrites it (--force).", ""]
    header += ["What was inferred:"] + [f"- {line}" for line in imported.inferred]
    if imported.unrouted:
        header += ["", "Not interposed (these connections do not go through the fault proxy; link faults cannot reach them):"]
        header += [f"- {u.client} -> {u.server} ({u.where}): {u.reason}" for u in imported.unrouted]
    if imported.dropped:
        header += ["", "Not carried over:"] + [f"- {line}" for line in imported.dropped]
    header += ["", "Every service's port and each link proxy's listener are published on 127.0.0.1 at free ports",
               "(roomquake stack status lists them): a client on the host can go through a link too."]
    parts = [_comment(header), "\n"]
    for key in ("name", "description", "default_profile"):
        parts.append(_dump({key: stack[key]}, 0, flow=False))
    parts.append(_dump({"profiles": stack["profiles"]}, 0))
    parts.append("\n# Images: built offline from the project's build contexts, or used as present in the engine.\n")
    parts.append(_dump({"images": stack["images"]}, 0))
    parts.append("\nservices:\n")
    for name, entry in stack["services"].items():
        notes = imported.service_notes.get(name)
        if notes:
            parts.append(_comment(notes, 2))
        elif name == stack["proxy"]["service"]:
            parts.append(_comment(["the fault proxy every link goes through (Toxiproxy's API)"], 2))
        if len(entry.get("env") or {}) > 1:
            entry = {**entry, "env": Block(entry["env"])}
        parts.append(_dump({name: entry}, 2))
    parts.append("\n")
    parts.append(_dump({"proxy": stack["proxy"]}, 0))
    parts.append("\n# client -> server; {route:server} in the client's env or command is its proxy listener.\n")
    parts.append(_dump({"links": stack["links"]}, 0) if stack["links"] else "links: []\n")
    parts.append("\n# Generic probes (kinds: chaos/probes.py); add your own, e.g. metric probes of a /metrics endpoint.\n")
    parts.append(_dump({"probes": stack["probes"]}, 0))
    return "".join(parts)
