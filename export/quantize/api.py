"""``quantize_bundle``: fp32 bundle + the user's calibration data → guarded int8 QDQ bundle."""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from edgevl.backends import EngineOptions
from edgevl.backends.ort import OrtEngine
from edgevl.bundle import Bundle, load_bundle, write_bundle
from edgevl.errors import BundleError, QuantizationError

from .data import FeedReader, pad_to_common_shape
from .guard import GuardResult, GuardThresholds
from .kinds import Kind, make_kind
from .ortcheck import describe as describe_fusion
from .ortcheck import ort_cpu_fusion
from .outliers import split_outliers
from .qdq import (
    METHODS,
    WEIGHT_OPS,
    bypass,
    prepare,
    quantize,
    quantized_nodes,
    smooth_checked,
    tmpdir,
    weight_nodes,
)
from .transformer import fold_attention_biases

Log = Callable[[str], None]


@dataclass(frozen=True)
class Attempt:
    """One evaluated candidate: how many nodes were kept in float and the guard's verdict."""

    stage: str
    kept_float: int
    result: GuardResult

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "kept_float": self.kept_float, "passed": self.result.passed,
                "margin": round(self.result.margin, 6),
                **{c.name: round(c.value, 6) for c in self.result.checks}}


def _steps(n: int) -> list[int]:
    """1, 2, 3, 4, 6, 8, 11, … up to n: how many of the most sensitive nodes to keep in float."""
    out, k = [], 1
    while k < n:
        out.append(k)
        k = max(k + 1, round(k * 1.4))
    out.append(n)
    return out


def _evaluate(kind: Kind, role: str, path: Path, options: EngineOptions) -> GuardResult:
    return kind.evaluate({role: OrtEngine(path, options)})


def matching_nodes(nodes: Sequence[str], patterns: Sequence[str]) -> list[str]:
    """The ``nodes`` whose name matches one of the shell-style ``patterns`` (``fnmatch``, case-sensitive)."""
    return [n for n in nodes if any(fnmatch.fnmatchcase(n, p) for p in patterns)]


def _quantize_role(kind: Kind, role: str, work: Path, method: str, op_types: Sequence[str],
                   max_float: float, smooth_alpha: float | None, options: EngineOptions,
                   log: Log, keep_float: Sequence[str] = (),
                   outlier_ratio: float | None = None) -> tuple[Path, dict[str, Any]]:
    src = kind.bundle.model_path(role)
    prep = work / f"{role}.prep.onnx"
    pre: dict[str, Any] = prepare(src, prep)
    feeds = kind.calibration(role)
    if method != "minmax":  # histogram calibrators need every batch in one shape
        feeds = pad_to_common_shape(feeds, kind.pad_values(role))
    reader = FeedReader(feeds)
    fmodel, biases = fold_attention_biases(onnx.load(str(prep)), reader.feeds)
    if any(biases.values()):
        pre["attention_biases"] = biases
        onnx.save(fmodel, str(prep))
    if smooth_alpha:
        fmodel, info = smooth_checked(fmodel, reader.feeds, smooth_alpha)
        pre["smoothquant"] = {"alpha": smooth_alpha, **info}
        onnx.save(fmodel, str(prep))
    float_parts: list[str] = []
    if smooth_alpha and outlier_ratio:  # the split rides on SmoothQuant's Mul (see outliers.py)
        split = split_outliers(fmodel, reader.feeds, outlier_ratio)
        float_parts = split["float_matmuls"]
        pre["outliers"] = {"ratio": outlier_ratio, "matmuls": split["matmuls"], "channels": split["channels"]}
        onnx.save(fmodel, str(prep))
    nodes = [n for n in weight_nodes(fmodel, op_types) if n not in float_parts]
    if not nodes:
        raise QuantizationError(f"{src}: no {'/'.join(op_types)} node with a constant weight to quantise")
    forced = matching_nodes(nodes, keep_float)  # the user's: float from the start, whatever the guard says
    free = [n for n in nodes if n not in forced]
    if keep_float and not free:
        raise QuantizationError(f"{src}: --keep-float {list(keep_float)} matches all {len(nodes)} "
                                "quantisable nodes; nothing would be int8")
    cache = work / f"{role}.ranges.json"
    out = work / f"{role}.int8.onnx"
    t0 = time.perf_counter()
    log(f"[{role}] calibrating ({method}, {len(reader.feeds)} batches) and quantising {len(free)} nodes"
        + (f" ({len(forced)} kept float by keep_float)" if forced else ""))
    qmodel = quantize(prep, out, reader, nodes=nodes, exclude=forced, method=method, cache=cache,
                      op_types=op_types)
    attempts = [Attempt("all", len(forced), _evaluate(kind, role, out, options))]
    log(f"[{role}] all quantised: {attempts[-1].to_dict()}")
    excluded: list[str] = list(forced)
    sensitivity: dict[str, float] = {}
    if not attempts[-1].result.passed:
        trial = work / f"{role}.trial.onnx"

        def with_float(names: Sequence[str]) -> GuardResult:
            onnx.save(bypass(qmodel, fmodel, names), str(trial))
            return _evaluate(kind, role, trial, options)

        log(f"[{role}] guard failed; sensitivity sweep over {len(free)} nodes (each kept in float alone)")
        for n in free:
            sensitivity[n] = with_float([*forced, n]).margin
        ranked = sorted(free, key=lambda n: -sensitivity[n])
        limit = max(1, int(len(nodes) * max_float) - len(forced))
        passed_at = None
        for k in _steps(min(limit, len(free))):
            res = with_float([*forced, *ranked[:k]])
            attempts.append(Attempt("sweep", len(forced) + k, res))
            log(f"[{role}] {k} most sensitive kept in float: {attempts[-1].to_dict()}")
            if not res.passed:
                continue
            # confirm with ORT's own quantiser (nodes_to_exclude) on the same calibrated ranges
            qmodel_k = quantize(prep, out, reader, nodes=nodes, exclude=[*forced, *ranked[:k]], method=method,
                                cache=cache, op_types=op_types)
            final = _evaluate(kind, role, out, options)
            attempts.append(Attempt("requantised", len(forced) + k, final))
            if final.passed:
                passed_at, excluded, qmodel = k, [*forced, *ranked[:k]], qmodel_k
                break
        if passed_at is None:
            tried = "; ".join(f"{a.stage} {a.kept_float} in float: margin {a.result.margin:+.4f}"
                              for a in attempts)
            worst = attempts[-1].result
            failing = ", ".join(f"{c.name} {c.value:.4f} < {c.threshold}"
                                for c in worst.checks if not c.passed)
            raise QuantizationError(
                f"{kind.bundle.path} [{role}]: int8 cannot meet the guard "
                f"({failing}) "
                f"even with up to {limit} of {len(nodes)} quantisable nodes kept in float (method {method}). "
                f"Tried: {tried}. Loosen the thresholds, give more/more representative calibration data, "
                f"or try --method percentile/entropy. No bundle was written."
            )
    qn = quantized_nodes(qmodel)
    report = {
        **pre,
        "candidates": len(nodes),
        "quantized": len([n for n in nodes if n in qn]),
        "kept_float": excluded,
        "kept_float_by_user": forced,
        "ops_quantized": sorted({v["op"] for v in qn.values()}),
        "seconds": round(time.perf_counter() - t0, 1),
        "attempts": [a.to_dict() for a in attempts],
        "ort_cpu": ort_cpu_fusion(out),  # what ORT's CPU provider really runs in int8
    }
    if sensitivity:
        top = sorted(sensitivity.items(), key=lambda kv: -kv[1])[:10]
        report["most_sensitive"] = [{"node": n, "margin_when_float": round(m, 6)} for n, m in top]
    return out, report


def quantize_bundle(bundle_dir: Path | str, calibration: Path | str, out_dir: Path | str, *,
                    method: str = "minmax", samples: int = 128, holdout: int = 64,
                    guard: GuardThresholds | None = None, op_types: Sequence[str] = WEIGHT_OPS,
                    max_float_fraction: float = 0.5, smooth_alpha: float | None = 0.9,
                    keep_float: Sequence[str] = (), outlier_ratio: float | None = None,
                    options: EngineOptions | None = None,
                    log: Log | None = None) -> Bundle:
    """Static post-training int8 quantisation of a bundle to QDQ ONNX, behind an accuracy guard.

    ``calibration``: the user's data (a text file for text encoders; a folder of images for CLIP
    image towers and the detector, plus an optional text file in it for CLIP's text tower; a folder
    of word crops, with an optional ``labels.tsv``, for the recogniser). ``samples`` items calibrate,
    up to ``holdout`` others (disjoint) are compared against fp32. When the fully quantised model
    fails ``guard``, a per-node sensitivity sweep keeps the most harmful nodes in float (at most
    ``max_float_fraction`` of them) until it passes; otherwise :class:`QuantizationError` and
    nothing is written. The report is in ``manifest.extra["quantization"]``. ``smooth_alpha``:
    SmoothQuant strength applied to MatMul inputs before calibration (None or 0: off).
    ``outlier_ratio``: input channels of a SmoothQuant'ed down-projection (e.g. BERT's FFN output
    MatMul) whose calibrated max |x| is at least this many times the median channel's are computed
    in float beside the int8 MatMul (see ``outliers.py``; None or 0: off; needs ``smooth_alpha``).
    ``keep_float``: shell-style patterns (``fnmatch``) of node names kept in float whatever the
    guard says (e.g. ``*/attn/out/MatMul``), for nodes whose inputs range wider on the texts or
    images the bundle will meet than on any calibration data at hand; a pattern that matches no
    node of any quantised role is an error (a typo would otherwise go unnoticed).
    """
    say: Log = log or (lambda _m: None)
    if method not in METHODS:
        raise QuantizationError(f"calibration method {method!r} not in {METHODS}")
    if outlier_ratio is not None and outlier_ratio != 0 and outlier_ratio <= 1:
        raise QuantizationError(f"outlier_ratio {outlier_ratio} must be > 1 (or 0/None: off): it is a "
                                "multiple of the median channel's range")
    if samples < 1 or holdout < 1:
        raise QuantizationError(f"samples ({samples}) and holdout ({holdout}) must be >= 1")
    src = load_bundle(bundle_dir)
    out = Path(out_dir)
    if out.resolve() == src.path.resolve():
        raise BundleError(f"{out}: the int8 bundle must go to another folder than its fp32 source")
    if src.manifest.precision != "fp32":
        raise BundleError(f"{src.path}: precision {src.manifest.precision!r}; quantise the fp32 bundle")
    thresholds = guard or GuardThresholds()
    opts = options or EngineOptions()
    kind = make_kind(src, Path(calibration), samples, holdout, thresholds, opts)
    t0 = time.perf_counter()
    roles: dict[str, Any] = {}
    models: dict[str, Path] = {}
    with tmpdir() as tmp:
        work = Path(tmp)
        int8: dict[str, OrtEngine] = {}
        for role in kind.roles:
            models[role], roles[role] = _quantize_role(kind, role, work, method, op_types,
                                                       max_float_fraction, smooth_alpha, opts, say,
                                                       keep_float, outlier_ratio)
            int8[role] = OrtEngine(models[role], opts)
        kept = [n for r in roles.values() for n in r["kept_float"]]
        unmatched = [p for p in keep_float if not matching_nodes(kept, [p])]
        if unmatched:
            raise QuantizationError(f"{src.path}: keep_float pattern(s) {unmatched} match no quantisable "
                                    f"node of {list(kind.roles)}; no bundle was written")
        final = kind.evaluate(int8)
        if not final.passed:  # roles that pass alone can still fail together (CLIP zero-shot)
            raise QuantizationError(f"{src.path}: the int8 roles {list(kind.roles)} pass alone but not "
                                    f"together: {final.to_dict()}; no bundle was written")
        import onnxruntime

        report = {
            "format": "QDQ",
            "weights": "int8, symmetric (zero point 0), per-channel",
            "activations": "int8, symmetric (zero point 0), per-tensor, static",
            "method": method,
            "op_types": list(op_types),
            "smooth_alpha": smooth_alpha,
            "keep_float": list(keep_float),
            "outlier_ratio": outlier_ratio if smooth_alpha else None,
            "onnxruntime": onnxruntime.__version__,
            "data": {"path": Path(calibration).name, **kind.describe()},
            "thresholds": thresholds.to_dict(),
            "roles": roles,
            "float_roles": [r for r in src.manifest.models if r not in kind.roles],
            "guard": final.to_dict(),
            "seconds": round(time.perf_counter() - t0, 1),
            "source_bundle": {"name": src.manifest.name, "digest": src.digest},
        }
        m = src.manifest
        model_files = {spec.file for spec in m.models.values()}
        bundle = write_bundle(
            out, name=m.name, task=m.task, precision="int8",
            models={r: models.get(r, src.model_path(r)) for r in m.models},
            extra_files={rel: src.path / rel for rel in m.files if rel not in model_files},
            preprocess=m.preprocess, config=m.config, source=m.source,
            extra={**m.extra, "quantization": report},
        )
    return bundle


def format_report(report: dict[str, Any]) -> str:
    """The guard report as a few readable lines."""
    lines = [f"int8 {report['format']} ({report['method']} calibration; {report['weights']}; "
             f"{report['activations']})", f"data: {report['data']}"]
    for role, r in report["roles"].items():
        lines.append(f"[{role}] {r['quantized']}/{r['candidates']} weight nodes int8, "
                     f"{len(r['kept_float'])} kept in float, {r['seconds']} s")
        for n in r["kept_float"]:
            lines.append(f"    float: {n}")
        if "ort_cpu" in r:
            lines.append(f"    {describe_fusion(r['ort_cpu'])}")
    for c in report["guard"]["checks"]:
        mark = "ok  " if c["passed"] else "FAIL"
        lines.append(f"  {mark} {c['name']:<28} {c['value']:.4f}  (threshold {c['threshold']})")
    for k, v in report["guard"].get("metrics", {}).items():
        lines.append(f"       {k:<28} {v:.4f}")
    return "\n".join(lines)
