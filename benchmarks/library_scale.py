"""Library-scale throughput: `edgevl library run` with 1 and 2 local workers and with Ray, side by side.

The photo set: the two shelf photos of ../shared/data/library plus rotated (90 degrees, 4 degrees),
cropped and rescaled copies of each (12 photos, 4624x3468 down to 1156x867). Each configuration runs
the whole set into a fresh results folder in this one process, one after the other:

- ``local 1x1``: one worker process, 1 ONNX Runtime thread (the unit of the scaling efficiency);
- ``local 1x2``: one worker process, 2 threads -- what ``edgevl match-books`` does (one process on
  both cores);
- ``local 2x1``: two worker processes, 1 thread each;
- ``ray 2x1``: a local Ray (num_cpus=2), two actors of 1 CPU, 1 thread each.

The committed result must come from a run under the bench lock (see the load averages it records).

Reported per configuration: wall time including start-up, photos/s on that wall time and in the steady
state (first to last finished photo), scaling efficiency (photos/s over workers x the 1x1 photos/s),
the peak RSS of every worker (their ru_maxrss; memory-mapped index pages and shared libraries count in
each), the load average around the run, and whether its matches equal the 1x1 run's.

    flock /tmp/edgevl-bench.lock python benchmarks/library_scale.py [--quick]

Writes benchmarks/results/library_scale.{json,md}. Needs ../shared/data/library (skips otherwise).
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import benchlib as bench

PATHS = bench.bench_paths(__file__)
DATA = PATHS.library


def make_photos(folder: Path, quick: bool) -> list[Path]:
    import cv2

    out: list[Path] = []
    for name in ("shelf_one", "shelf_two"):
        img = cv2.imread(str(DATA / f"{name}.jpg"))
        h, w = img.shape[:2]
        rot = cv2.getRotationMatrix2D((w / 2, h / 2), 4.0, 1.0)
        variants = {
            "orig": img,
            "rot90": cv2.rotate(img, cv2.ROTATE_90_CLOCKWISE),
            "rot4": cv2.warpAffine(img, rot, (w, h), borderMode=cv2.BORDER_REPLICATE),
            "crop_left": img[:, : w // 2],
            "crop_mid": img[h // 4: 3 * h // 4, w // 4: 3 * w // 4],
            "half": cv2.resize(img, (w // 2, h // 2), interpolation=cv2.INTER_AREA),
        }
        if quick:
            variants = {k: variants[k] for k in ("crop_mid", "half")}
        for k, v in variants.items():
            p = folder / f"{name}_{k}.jpg"
            cv2.imwrite(str(p), v, [cv2.IMWRITE_JPEG_QUALITY, 92])
            out.append(p)
    return out


def matches(out: Path) -> list[tuple[str, str, str]]:
    rows = csv.DictReader((out / "results.csv").open(encoding="utf-8"))
    return sorted((r["photo"], r["spine"], r["book_id"]) for r in rows)


def run_config(label: str, photos: list[str], work: Path, **kw: Any) -> dict[str, Any]:
    from edgevl.library import RunConfig, run_library

    out = work / label.replace(" ", "_")
    stamps: list[float] = []
    cpu: list[float] = []

    def on_record(rec: dict[str, Any]) -> None:
        stamps.append(time.perf_counter())
        cpu.append(float(rec["seconds"].get("cpu", 0.0)))

    def progress(todo: int, skipped: int) -> Any:
        return on_record

    load_before = os.getloadavg()
    t0 = time.perf_counter()
    s = run_library(photos, RunConfig(catalogue=DATA / "library_books.csv", out=out, **kw), progress)
    wall = time.perf_counter() - t0
    load_after = os.getloadavg()
    span = stamps[-1] - stamps[0] if len(stamps) > 1 else 0.0
    steady = (len(stamps) - 1) / span if span > 0 else 0.0
    peaks = sorted(s.peak_rss_mb.values())
    return {"config": label, "workers": len(peaks), "photos": s.processed, "failures": s.total.failures,
            "spines": s.total.spines, "matched": s.total.matched, "wall_s": round(wall, 2),
            "photos_per_s": round(s.processed / wall, 4), "steady_photos_per_s": round(steady, 4),
            "first_photo_s": round(stamps[0] - t0, 2) if stamps else None,
            "cpu_s_per_photo": round(sum(cpu) / max(1, len(cpu)), 3),
            "worker_peak_rss_mb": peaks, "load_before": [round(x, 2) for x in load_before],
            "load_after": [round(x, 2) for x in load_after], "_out": out}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="4 smaller photos")
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("library_scale"),
                    help="result stem: a bare name goes into benchmarks/results")
    args = ap.parse_args()
    args.out = PATHS.stem(args.out)
    if not (DATA / "shelf_one.jpg").is_file():
        print(f"skipped: {DATA} not found", file=sys.stderr)
        return 0
    from edgevl.books import load_catalogue, load_or_build

    load_before = bench.start()
    work = Path(tempfile.mkdtemp(prefix="edgevl-libscale-"))
    try:
        photos = [str(p) for p in make_photos(work, args.quick)]
        load_or_build(load_catalogue(DATA / "library_books.csv"))  # the index once, before any timing
        rows = [run_config("local 1x1", photos, work, workers=1, threads=1),
                run_config("local 1x2", photos, work, workers=1, threads=2),
                run_config("local 2x1", photos, work, workers=2, threads=1)]
        if not args.no_ray:
            try:
                import ray
            except ImportError:
                print("ray not installed: the Ray row is skipped (pip install 'edgevl[scale]')",
                      file=sys.stderr)
            else:
                t0 = time.perf_counter()
                ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING,
                         log_to_driver=False)
                ray_start = time.perf_counter() - t0
                try:
                    r = run_config("ray 2x1", photos, work, ray=True, actors=2, num_cpus=1.0, threads=1)
                finally:
                    ray.shutdown()
                r["ray_init_s"] = round(ray_start, 2)
                rows.append(r)
        base = rows[0]
        ref = matches(base["_out"])
        for r in rows:
            r["same_matches_as_1x1"] = matches(r.pop("_out")) == ref
            r["speedup_vs_1x1"] = round(r["photos_per_s"] / base["photos_per_s"], 3)
            r["steady_speedup_vs_1x1"] = round(r["steady_photos_per_s"] / base["steady_photos_per_s"], 3)
            n = max(1, r["workers"])
            r["scaling_efficiency"] = round(r["photos_per_s"] / (n * base["photos_per_s"]), 3)
            r["steady_scaling_efficiency"] = round(
                r["steady_photos_per_s"] / (n * base["steady_photos_per_s"]), 3)
        peer = next(r for r in rows if r["config"] == "local 1x2")
        for r in rows:
            r["vs_match_books_style"] = round(r["steady_photos_per_s"] / peer["steady_photos_per_s"], 3)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    doc = bench.new_result("library_scale", bench.command_line(PATHS.repo, locked=True),
                           load_before=load_before, packages=("ray",), photos=len(photos),
                           catalogue="library_books.csv (15,228 rows)", rows=rows)
    bench.write_result(doc, args.out, render)
    return 0


def render(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    rows = [[r["config"], r["workers"], r["wall_s"], f"{r['photos_per_s']:.3f}",
             f"{r['steady_photos_per_s']:.3f}", f"{r['steady_speedup_vs_1x1']:.2f}x",
             f"{r['scaling_efficiency']:.2f} / {r['steady_scaling_efficiency']:.2f}",
             f"{r['vs_match_books_style']:.2f}x", ", ".join(f"{x:.0f}" for x in r["worker_peak_rss_mb"]),
             f"{r.get('cpu_s_per_photo', float('nan')):.2f}",
             f"{r['spines']} / {r['matched']} / {r['failures']}", "yes" if r["same_matches_as_1x1"] else "no",
             f"{r['load_before'][0]} / {r['load_after'][0]}"] for r in doc["rows"]]
    blocks: list[bench.Block] = [bench.Table(
        ["config", "workers", "wall s", "photos/s (wall)", "photos/s (steady)", "speedup vs 1x1 (steady)",
         "scaling efficiency (wall / steady)", "vs 1x2 = match-books (steady)", "worker peak RSS MiB",
         "worker CPU s / photo", "spines / matched / failures", "same matches as 1x1",
         "load 1-min before / after"], rows)]
    ray_rows = [r for r in doc["rows"] if "ray_init_s" in r]
    if ray_rows:
        blocks += [f"Ray start-up (`ray.init(num_cpus=2)`, outside the wall time above): "
                   f"{ray_rows[0]['ray_init_s']} s.", ""]
    blocks += ["Wall time includes starting the workers (spawned processes or actors loading the OCR "
               "bundles and mapping the index); steady = (photos - 1) / (last - first finished photo). "
               "Worker CPU s / photo: process CPU time (all ONNX Runtime threads) per photo, which "
               "contention on a shared machine changes much less than wall time."]
    notes = [f"{m.get('memory_gb')} GiB; a VM shared with other engineers' jobs: see the load averages",
             f"{doc['photos']} photos (the two shelf photos and rotated/cropped/rescaled copies), catalogue "
             f"{doc['catalogue']}. WxT = worker processes (Ray actors) x ONNX Runtime threads each."]
    return bench.render_markdown(doc, "library_scale: `edgevl library run` throughput", blocks, notes)

if __name__ == "__main__":
    sys.exit(main())
