"""The declared benchmark suite: every committed result in results/, the script and arguments that
make it, the files it writes, its quick variant, and who holds the bench lock.

``run_all.py`` runs this list (nothing is discovered by reading the scripts); a test checks that every
script named here exists, that every ``*.py`` in benchmarks/ is either named here or listed in
``HELPERS``, and that every declared output is committed. A new benchmark adds one entry.
``Benchmark`` (one entry) is declared here, beside the list it makes up.
"""

from __future__ import annotations

from dataclasses import dataclass

RUNNERS = ("script", "edgevl-bench", "manual")
LOCKS = ("outer", "self")


@dataclass(frozen=True)
class Benchmark:
    """One entry of the declared suite (``benchmarks/suite.py``) that ``run_all.py`` runs.

    ``name`` is the result's stem in ``results/``; ``outputs`` the files it writes there. ``runner``:
    ``script`` runs ``python benchmarks/<script> <args>``; ``edgevl-bench`` is run_all's own
    ``edgevl bench`` runs; ``manual`` is made by hand with ``command`` (listed, never run). ``quick``:
    the arguments for ``run_all.py --quick`` (None: the full ``args`` are quick enough). ``lock``:
    ``outer`` when run_all holds the bench lock around the run, ``self`` when the script takes it
    around its own timed loops (holding it twice would deadlock).
    """

    name: str
    outputs: tuple[str, ...]
    script: str | None = None
    args: tuple[str, ...] = ()
    quick: tuple[str, ...] | None = None
    lock: str = "outer"
    runner: str = "script"
    command: str = ""
    note: str = ""

    def __post_init__(self) -> None:
        if self.runner not in RUNNERS or self.lock not in LOCKS:
            raise ValueError(f"{self.name}: runner {self.runner!r} not in {RUNNERS} or lock {self.lock!r} "
                             f"not in {LOCKS}")
        if (self.runner == "script") != (self.script is not None):
            raise ValueError(f"{self.name}: a 'script' runner needs a script, other runners none")
        if self.runner == "manual" and not self.command:
            raise ValueError(f"{self.name}: a manual result says the command that made it")
        if not self.outputs:
            raise ValueError(f"{self.name}: declares no outputs")

    def argv(self, quick: bool = False) -> list[str]:
        """The script's arguments (the quick variant with ``quick``)."""
        return list(self.quick if quick and self.quick is not None else self.args)


J, M = ".json", ".md"


def _out(name: str, *suffixes: str) -> tuple[str, ...]:
    return tuple(name + s for s in suffixes)


#: files in benchmarks/ that are not benchmarks (imported by them, or generators)
HELPERS = ("ocr_common.py", "strgen.py", "suite.py", "run_all.py", "stdlib_prose.py",
           # prints MACs and GMAC/s for stage seconds given on its command line; writes no result
           "ocr_macs.py")

SUITE: tuple[Benchmark, ...] = (
    Benchmark("ocr_vs_rapidocr", _out("ocr_vs_rapidocr", J, M), "ocr_vs_rapidocr.py", ("--runs", "5"),
              quick=("--runs", "1")),
    Benchmark("ocr_vs_rapidocr_int8", _out("ocr_vs_rapidocr_int8", J, M), "ocr_vs_rapidocr.py",
              ("--tools", "rapidocr-ov,rapidocr-ort,edgevl:ppocrv6:openvino,"
                          "edgevl:ppocrv6:openvino:rec=ppocrv6-int8",
               "--runs", "5", "--warmup", "2", "--busy", "0", "--process-runs", "0", "--cold-runs", "0",
               "--result-name", "ocr_vs_rapidocr_int8"),
              quick=("--tools", "rapidocr-ov,edgevl:ppocrv6:openvino:rec=ppocrv6-int8", "--runs", "1",
                     "--busy", "0", "--process-runs", "0", "--cold-runs", "0",
                     "--result-name", "ocr_vs_rapidocr_int8"),
              note="the int8 recogniser (ppocrv6-int8) beside edgevl's default and the fastest peer, 5 runs"),
    Benchmark("int8_rec_openvino", _out("int8_rec_openvino", J, M), "int8_rec_openvino.py",
              quick=("--rounds", "1")),
    Benchmark("ov_first_call", _out("ov_first_call", J, M), "ov_first_call.py", ("--runs", "3"),
              quick=("--runs", "1"),
              note="OpenVINO's first pass over a photo's recogniser batch shapes vs warm: the fresh-process "
                   "cost behind issue 23's whole-process target"),
    Benchmark("ov_int8_det", _out("ov_int8_det", J, M), "ov_int8_det.py", quick=("--rounds", "1"),
              lock="self",
              note="the PP-OCRv6 detector in int8 (all nodes, and the stem in float) on OpenVINO f32/bf16 "
                   "and ONNX Runtime: speed and boxes against fp32 (issue 23, docs/int8.md)"),
    Benchmark("str_eval", _out("str_eval", J, M), "str_eval.py", quick=("--n", "8")),
    Benchmark("str_eval_crnn", _out("str_eval_crnn", J, M), "str_eval.py",
              ("--rec-export", "crnn=english_g2.pth", "--rec-variant", 'crnn-zeropad=crnn:pad="constant"',
               "--rec-variant", "crnn-minw64=crnn:min_width=64", "--result-name", "str_eval_crnn",
               "--readers", "edgevl,edgevl-plain,edgevl[crnn],edgevl-plain[crnn],edgevl-plain[crnn-zeropad],"
               "edgevl-plain[crnn-minw64],rapidocr-rec"),
              quick=("--n", "8", "--rec-export", "crnn=english_g2.pth", "--result-name", "str_eval_crnn"),
              note="EasyOCR's english_g2 CRNN exported from torch beside PP-OCRv6 small (export extra)"),
    Benchmark("craft_vs_ppocr", _out("craft_vs_ppocr", J, M), "craft_vs_ppocr.py", quick=("--runs", "1"),
              note="CRAFT exported from torch vs PP-OCRv6 small's detector on examples/shelf.png"),
    Benchmark("svtrv2_str", _out("svtrv2_str", J, M), "svtrv2_str.py", ("--n", "40"), quick=("--n", "4"),
              note="SVTRv2 vs PP-OCRv6 on the STR set, size policies, cascade curve (issue 21)"),
    Benchmark("svtrv2_shelf", _out("svtrv2_shelf", J, M), "svtrv2_shelf.py",
              note="cascade PP-OCRv6 -> SVTRv2 on the shelf photos: catalogue words, time, match-books"),
    Benchmark("svtrv2_speed", _out("svtrv2_speed", J, M), "svtrv2_speed.py",
              quick=("--runs", "3", "--n", "4"),
              note="SVTRv2 latency per input size: wheel graph, fused fp32, int8 (built first with "
                   "edgevl quantize); where the time goes; the int8 accuracy guard on the STR set"),
    Benchmark("ocr_models_books", _out("ocr_models_books", J, M), "ocr_models_books.py",
              note="match-books (OCR, spine grouping, assignment) on both shelf photos with each OCR model"),
    Benchmark("bench_ppocr", _out("bench_ppocr", J, M, ".png"), runner="edgevl-bench",
              note="edgevl bench on the PP-OCRv4 det (batch 1, 8) and cls/rec (batch 1, 8, 32) bundles"),
    Benchmark("books_calibration", (*_out("books_calibration", J, M), "books_pr_curve.png"),
              "books_calibrate.py", quick=("--no-nested",),
              note="also rewrites the shipped calibration edgevl/data/books_calibration.json "
                   "(the same file again on the same data; --no-write leaves it)"),
    Benchmark("books_conditions", _out("books_conditions", J, M), "books_conditions.py",
              note="labels / no-labels conditions out of fold; also rewrites the shipped "
                   "edgevl/data/books_calibration_unlabelled.json (--no-write leaves it)"),
    Benchmark("books_errors", _out("books_errors", J, M), "books_errors.py",
              note="the shipped set's out-of-fold errors by class (seed-7 shuffle of the 15-fold protocol)"),
    Benchmark("books_errors_label_elsewhere", _out("books_errors_label_elsewhere", J, M), "books_errors.py",
              ("--features", "cos,cos_margin,title_cov,author_cov,tag,ocr_explained,log_len,other_tag,"
               "no_author,unexplained,other_explains,tag_exact,tag_tokens,extra_tags,title_x_author,"
               "tag_x_author,tag_x_title,cos_x_margin,explained_x_len,shelf_unlabelled,labels_extra,"
               "tag_flipped,number_match,number_conflict,label_elsewhere",
               "--out", "books_errors_label_elsewhere"),
              note="the same with the label_elsewhere feature (measured, not shipped: docs/books.md)"),
    Benchmark("books_photos", _out("books_photos", J, M), "books_photos.py",
              note="edgevl's OCR on the two shelf photos against benchmarks/data/shelf_spines.csv"),
    Benchmark("books_photos_1792", _out("books_photos_1792", J, M), "books_photos.py",
              ("--limit-side", "1792", "--out", "books_photos_1792"),
              note="the same at edgevl ocr's 1792-px detector input (match-books reads full resolution)"),
    Benchmark("books_match", _out("books_match", J, M), "books_match.py", quick=("--limit", "300")),
    Benchmark("books_minilm", _out("books_minilm", J, M), "books_minilm.py"),
    Benchmark("books_scale", _out("books_scale", J, M), "books_scale.py",
              ("--sizes", "15228,200000,500000,2000000"), quick=("--sizes", "15228,100000")),
    Benchmark("library_scale", _out("library_scale", J, M), "library_scale.py", quick=("--quick",)),
    Benchmark("encoders_speed", _out("encoders_speed", J, M), "encoders_speed.py", ("--rounds", "400"),
              quick=("--rounds", "20")),
    Benchmark("encoders_speed_1thread", _out("encoders_speed_1thread", J, M), "encoders_speed.py",
              ("--rounds", "100", "--threads", "1", "--out", "encoders_speed_1thread"),
              quick=("--rounds", "10", "--threads", "1", "--out", "encoders_speed_1thread")),
    Benchmark("int8_minilm", _out("int8_minilm", J, M), "int8_bench.py",
              ("--kinds", "minilm", "--rounds", "60", "--name", "int8_minilm"),
              quick=("--kinds", "minilm", "--rounds", "5", "--name", "int8_minilm"), lock="self"),
    Benchmark("int8_minilm_defaults", _out("int8_minilm_defaults", J, M), "int8_minilm_defaults.py",
              note="accuracy of int8 MiniLM recipes calibrated on catalogue lines: quantize's defaults"),
    Benchmark("int8_ppocr", _out("int8_ppocr", J, M), "int8_bench.py",
              ("--kinds", "rec,det", "--rounds", "10", "--name", "int8_ppocr"),
              quick=("--kinds", "rec,det", "--rounds", "3", "--name", "int8_ppocr"), lock="self"),
    Benchmark("int8_clip", _out("int8_clip", J, M), "int8_bench.py",
              ("--kinds", "clip", "--rounds", "12", "--name", "int8_clip"),
              quick=("--kinds", "clip", "--rounds", "3", "--name", "int8_clip"), lock="self"),
    Benchmark("fuzz", _out("fuzz", J, M), "fuzz.py", ("--examples", "2000"), quick=("--examples", "50")),
    Benchmark("books_shelves", (*_out("books_shelves", J, M), "books_shelf_one.jpg", "books_shelf_two.jpg"),
              runner="manual",
              command="edgevl match-books ../shared/data/library/shelf_one.jpg "
                      "../shared/data/library/shelf_two.jpg -c ../shared/data/library/library_books.csv "
                      "--draw benchmarks/results/books_shelf.jpg --json",
              note="the JSON is the CLI's output; the Markdown is written by hand from it"),
    Benchmark("aarch64_smoke", ("aarch64_smoke.md",), runner="manual",
              command="nice -n 10 scripts/aarch64_smoke.sh",
              note="emulated arm64 run (needs root, qemu-user, debootstrap; minutes): the comparison "
                   "JSON stays in the work folder, the Markdown is written by hand from it"),
    Benchmark("zeroshot_toy", _out("zeroshot_toy", J, M), runner="manual",
              command="python -m edgevl_export.toy --out /tmp/toyfull --steps 400 --batch 96 "
                      "--results benchmarks/results/zeroshot_toy.json",
              note="trains a toy CLIP (about 10 CPU-minutes); the Markdown is written by hand"),
)
