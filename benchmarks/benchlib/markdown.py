"""The one Markdown renderer of a script's result, from its JSON alone (so a result can be re-rendered
without re-measuring). Tables and the machine line are :mod:`edgevl.bench.report`'s, shared with
``edgevl bench``'s files."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from edgevl.bench.report import machine_line, md_table


@dataclass(frozen=True)
class Table:
    """A Markdown table: a header row and rows of cells (any value; ``str()`` of it, ``|`` escaped)."""

    headers: Sequence[str]
    rows: Sequence[Sequence[Any]]


Block = str | Table


def render_markdown(doc: Mapping[str, Any], title: str, blocks: Sequence[Block] = (),
                    notes: Sequence[str] = ()) -> str:
    """The one Markdown renderer of a script's result: title, machine / command / date lines, the
    script's ``notes`` (more ``- `` lines) and ``blocks`` (text lines and tables, a blank line after
    each table)."""
    out = [f"# {title}", "", f"- machine: {machine_line(doc['machine'])}", f"- command: `{doc['command']}`",
           f"- date: {doc['created']}"]
    git = doc.get("git")
    if isinstance(git, Mapping) and git.get("commit"):
        dirty = git.get("uncommitted") or []
        out.append(f"- code: commit {git['commit']}"
                   + (f", with uncommitted changes in {', '.join(dirty)}" if dirty else ""))
    out += [f"- {n}" for n in notes]
    out.append("")
    for b in blocks:
        if isinstance(b, Table):
            out += [md_table(b.headers, b.rows), ""]
        else:
            out.append(b)
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"
