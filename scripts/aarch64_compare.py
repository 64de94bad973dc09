#!/usr/bin/env python3
"""Compare the x86-64 and emulated-arm64 outputs written by scripts/aarch64_smoke.sh.

Texts (OCR lines, spine readings, matched titles and catalogue rows) must be identical; embeddings
within ``--atol`` (1e-5) element-wise; boxes and scores are reported as their largest difference.
Writes a JSON record and the markdown tables of benchmarks/results/aarch64_smoke.md; exit 1 when
anything differs beyond its bound.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    max_abs: float | None = None


def _load(p: Path) -> Any:
    return json.loads(p.read_text(encoding="utf-8"))


def _maxdiff(a: Any, b: Any) -> float:
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        return float("inf")
    return float(np.max(np.abs(x - y))) if x.size else 0.0


def compare_ocr(x: Any, a: Any) -> list[Check]:
    lx, la = x["images"][0]["lines"], a["images"][0]["lines"]
    tx, ta = [ln["text"] for ln in lx], [ln["text"] for ln in la]
    same = tx == ta
    detail = f"{len(tx)} lines, identical" if same else f"x86 {tx} vs arm64 {ta}"
    out = [Check("ocr: line texts", same, detail)]
    if same:
        q = max((_maxdiff(p["quad"], r["quad"]) for p, r in zip(lx, la, strict=True)), default=0.0)
        s = max((abs(p["score"] - r["score"]) for p, r in zip(lx, la, strict=True)), default=0.0)
        v = [ln["vertical"] for ln in lx] == [ln["vertical"] for ln in la]
        out.append(Check("ocr: vertical flags", v, "identical" if v else "differ"))
        out.append(Check("ocr: boxes (px, printed to 0.1)", True, f"max |diff| {q:g}", q))
        out.append(Check("ocr: scores (printed to 1e-4)", True, f"max |diff| {s:g}", s))
    return out


def compare_match(x: Any, a: Any) -> list[Check]:
    sx, sa = x[0]["spines"], a[0]["spines"]
    keys = ("ocr", "matched", "title", "author", "tag", "catalogue_rows")
    kx = [[s[k] for k in keys] for s in sx]
    ka = [[s[k] for k in keys] for s in sa]
    same = kx == ka
    n_matched = sum(1 for s in sx if s["matched"])
    detail = (f"{len(sx)} spines, {n_matched} matched: readings, titles and catalogue rows identical" if same
              else f"{sum(p != q for p, q in zip(kx, ka, strict=False))} of {len(sx)} spines differ "
                   f"(arm64 has {len(sa)})")
    out = [Check("match-books: spines", same, detail)]
    if same:
        poly = max((_maxdiff(p["polygon"], q["polygon"]) for p, q in zip(sx, sa, strict=True)), default=0.0)
        sc = max((abs(p["score"] - q["score"]) for p, q in zip(sx, sa, strict=True)), default=0.0)
        out.append(Check("match-books: polygons (px, printed to 0.1)", True, f"max |diff| {poly:g}", poly))
        out.append(Check("match-books: scores (printed to 1e-4)", True, f"max |diff| {sc:g}", sc))
    return out


def compare_embed(x: Any, a: Any, atol: float) -> list[Check]:
    ix, ia = x["items"], a["items"]
    texts = [i["input"] for i in ix] == [i["input"] for i in ia]
    ex = np.asarray([i["embedding"] for i in ix], dtype=np.float64)
    ea = np.asarray([i["embedding"] for i in ia], dtype=np.float64)
    d = _maxdiff(ex, ea)
    cos = float(np.min(np.sum(ex * ea, 1) / (np.linalg.norm(ex, axis=1) * np.linalg.norm(ea, axis=1))))
    ident = bool(np.array_equal(ex, ea))
    return [Check("embed: inputs", texts, f"{len(ix)} texts, dim {x['dim']}"),
            Check(f"embed: values (bound {atol:g})", d <= atol,
                  f"max |diff| {d:.3g}, min cosine {cos:.9f}, bit-identical: {ident}", d)]


def _timings(p: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in p.read_text().splitlines():
        k, v = line.split("\t")
        out[k] = round(float(v), 1)
    return out


def to_markdown(rec: dict[str, Any]) -> str:
    lines = ["| check | result | detail |", "| --- | --- | --- |"]
    for c in rec["checks"]:
        lines.append(f"| {c['name']} | {'pass' if c['ok'] else '**FAIL**'} | {c['detail']} |")
    lines += ["", "| step | seconds |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in rec["timings_s"].items()]
    vx, va = rec["versions"]["x86"], rec["versions"]["arm64"]
    lines += ["", "| | x86-64 (host) | arm64 (qemu-user, Debian bookworm) |", "| --- | --- | --- |"]
    lines += [f"| {k} | {vx.get(k)} | {va.get(k)} |" for k in vx]
    if rec.get("arm64_cv2_as_installed"):
        lines += ["", f"`import cv2` as pip installed it on arm64: `{rec['arm64_cv2_as_installed']}` "
                  "(opencv-python-headless reinstalled over opencv-python before the runs)"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--timings", type=Path, required=True)
    ap.add_argument("--json-out", type=Path, required=True)
    ap.add_argument("--atol", type=float, default=1e-5)
    args = ap.parse_args(argv)
    w = args.work
    checks = (compare_ocr(_load(w / "x86/ocr.json"), _load(w / "arm64/ocr.json"))
              + compare_match(_load(w / "x86/match.json"), _load(w / "arm64/match.json"))
              + compare_embed(_load(w / "x86/embed.json"), _load(w / "arm64/embed.json"), args.atol))
    rec = {
        "ok": all(c.ok for c in checks),
        "checks": [asdict(c) for c in checks],
        "timings_s": _timings(args.timings),
        "versions": {"x86": _load(w / "x86/versions.json"), "arm64": _load(w / "arm64/versions.json")},
        "host": {"cpu": platform.processor() or platform.machine(), "nproc": os.cpu_count(),
                 "loadavg": [round(v, 2) for v in os.getloadavg()]},
        "arm64_pip_freeze": (w / "arm64/freeze.txt").read_text().split(),
    }
    cv2_note = w / "arm64/cv2_import.txt"
    if cv2_note.exists() and cv2_note.read_text().strip():
        rec["arm64_cv2_as_installed"] = cv2_note.read_text().strip().splitlines()[-1]
    args.json_out.write_text(json.dumps(rec, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    md = to_markdown(rec)
    (w / "table.md").write_text(md, encoding="utf-8")
    print(md)
    return 0 if rec["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
