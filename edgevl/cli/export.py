"""``edgevl export``: a checkpoint → a model bundle (build side; needs the ``export`` extra).

torch and the build-side package ``edgevl_export`` are imported inside the command only, so
``edgevl --help`` and every runtime command stay torch-free.
"""

from __future__ import annotations

import importlib
import os
import shutil
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import typer

from edgevl.bundle import PRECISIONS, Bundle
from edgevl.cli.app import app, emit_json
from edgevl.cli.checks import flag
from edgevl.errors import CalibrationError, CheckpointError, EdgevlError, InputError
from edgevl.safeio import read_json_file

TARGETS = ("onnx", "tensorrt")
ACTIVATIONS = {"auto": None, "quickgelu": True, "gelu": False}
#: --arch values that pick an OCR exporter instead of a CLIP architecture
OCR_ARCHS = ("crnn", "craft")


def _build_side(module: str) -> ModuleType:
    """Import a build-side module, with a clear error when the export extra is missing."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name in ("torch", "onnx", "onnxscript", "safetensors", "transformers", "edgevl_export"):
            raise EdgevlError(
                f"edgevl export needs the build-side dependencies ({e.name} is missing): "
                "pip install 'edgevl[export]'"
            ) from e
        if e.name == module:
            raise EdgevlError(f"{module} is not available in this edgevl build") from e
        raise


def _hf_model_type(checkpoint: Path) -> str | None:
    cfg = checkpoint / "config.json"
    if not checkpoint.is_dir() or not cfg.is_file():
        return None
    try:  # bounded: a regular file of at most 4 MiB, nested at most 32 levels, strict JSON
        data = read_json_file(cfg, "checkpoint config", max_bytes=4 << 20, max_depth=32)
    except InputError as e:
        raise CheckpointError(str(e)) from None
    return str(data.get("model_type")) if isinstance(data, dict) else None


def export_any(
    checkpoint: Path,
    out: Path,
    *,
    arch: str | None = None,
    precision: str = "fp32",
    opset: int = 17,
    calibration: Path | None = None,
    tokenizer: Path | None = None,
    activation: str = "auto",
    dynamo: bool = False,
    target: str = "onnx",
    charset: Path | None = None,
) -> Bundle:
    """What ``edgevl export`` does, callable from Python."""
    if target not in TARGETS:
        raise EdgevlError(f"--target {target!r}: expected one of {', '.join(TARGETS)}")
    if target == "tensorrt":
        if precision == "fp16":
            raise EdgevlError("--target tensorrt rewrites fp32 or int8 graphs; export fp32 and build "
                              "the fp16 engine with `edgevl engine build BUNDLE --precision fp16`")
        if arch in OCR_ARCHS or (arch is None and checkpoint.is_file()
                                 and _build_side("edgevl_export.arch").sniff(checkpoint)[0] in OCR_ARCHS):
            raise EdgevlError("--target tensorrt rewrites attention blocks (CLIP, MiniLM); the EasyOCR CRNN "
                              "and CRAFT have none: export without --target and build a TensorRT engine "
                              "from the ONNX bundle")
        trt = _build_side("edgevl_export.trt.bundle")
        bundle = export_any(checkpoint, out, arch=arch, precision=precision, opset=opset,
                            calibration=calibration, tokenizer=tokenizer, activation=activation,
                            dynamo=dynamo)
        rewritten: Bundle = trt.add_tensorrt_graphs(bundle)
        return rewritten
    if precision not in PRECISIONS:
        raise EdgevlError(f"--precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    if activation not in ACTIVATIONS:
        raise EdgevlError(f"--activation {activation!r}: expected one of {', '.join(ACTIVATIONS)}")
    if not checkpoint.exists():
        raise CheckpointError(f"{checkpoint}: no such file or folder (expected a .pt/.safetensors file "
                              "or a Hugging Face model folder)")
    if precision == "int8" and calibration is None:
        raise CalibrationError(
            "--precision int8 needs --calibration DATA (a folder of images for CLIP image encoders, a text "
            "file with one sentence per line for text encoders)"
        )
    if calibration is not None and not calibration.exists():
        raise CalibrationError(f"{calibration}: calibration data not found")
    base_precision = "fp32" if precision == "int8" else precision

    def build(target: Path) -> Bundle:
        model_type = _hf_model_type(checkpoint)
        if model_type == "bert":
            bert = _build_side("edgevl_export.bert_bundle")
            result: Bundle = bert.export_bert(checkpoint, target, precision=base_precision, opset=opset)
            return result
        if arch in OCR_ARCHS or (arch is None and checkpoint.is_file()):
            sniff = _build_side("edgevl_export.arch").sniff
            kind, sd, fmt = (arch, None, "torch") if arch else sniff(checkpoint)
            if kind == "crnn":
                crnn = _build_side("edgevl_export.crnn_bundle")
                result = crnn.export_crnn(checkpoint, target, opset=opset, precision=precision,
                                          charset=charset, state_dict=sd, fmt=fmt)
                return result
            if kind == "craft":
                craft = _build_side("edgevl_export.craft_bundle")
                result = craft.export_craft(checkpoint, target, opset=opset, precision=precision,
                                            state_dict=sd, fmt=fmt)
                return result
        if charset is not None:
            raise EdgevlError("--charset is for text recogniser checkpoints (EasyOCR CRNN); "
                              f"{checkpoint} is not one")
        clip = _build_side("edgevl_export.clip_bundle")
        result = clip.export_checkpoint(
            checkpoint, target, arch=arch, precision=base_precision, opset=opset, tokenizer=tokenizer,
            quick_gelu=ACTIVATIONS[activation], dynamo=dynamo,
        )
        return result

    if precision != "int8":
        return build(out)
    quantize = _build_side("edgevl_export.quantize")
    with tempfile.TemporaryDirectory(prefix="edgevl-fp32-") as tmp:
        fp32 = build(Path(tmp) / "fp32")
        result: Bundle = quantize.quantize_bundle(fp32.path, calibration, out)
        return result


@app.command("export")
def export_cmd(
    checkpoint: Path = typer.Option(..., "--checkpoint", "-c",
                                    help="HF folder, .pt/.pth/.bin state dict or TorchScript, .safetensors"),
    out: Path = typer.Option(..., "--out", "-o", help="bundle directory to write"),
    arch: str = typer.Option(None, "--arch", help="architecture name (default: read from the checkpoint); "
                             "'crnn' / 'craft' force the EasyOCR CRNN recogniser / CRAFT detector exporter"),
    precision: str = typer.Option("fp32", "--precision", help="fp32 | fp16 | int8"),
    opset: int = typer.Option(17, "--opset", help="ONNX opset (>= 17 for LayerNormalization)"),
    calibration: Path = typer.Option(None, "--calibration", help="calibration data (int8 only)"),
    tokenizer: Path = typer.Option(
        None, "--tokenizer", help="CLIP tokenizer: tokenizer.json, vocab.json(+merges.txt), bpe_simple_vocab"
    ),
    charset: Path = typer.Option(None, "--charset", help="recogniser classes after the CTC blank, one per "
                                 "line (default: the known list of the checkpoint, e.g. english_g2)"),
    activation: str = typer.Option(
        "auto", "--activation", help="CLIP MLP activation for plain state dicts: auto | quickgelu | gelu"
    ),
    dynamo: bool = flag("--dynamo", help="use torch's dynamo exporter (slower)"),
    target: str = typer.Option(
        "onnx", "--target", help="onnx | tensorrt (also writes graphs with the EdgevlAttention plugin op)"
    ),
    force: bool = flag("--force", help="overwrite a non-empty --out"),
    as_json: bool = flag("--json", help="print the manifest as JSON"),
) -> None:
    """Export a CLIP / LightCLIP / BERT (MiniLM) / EasyOCR CRNN or CRAFT checkpoint to a checked bundle."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not force:
            raise EdgevlError(f"{out}: exists and is not empty; pass --force to overwrite a bundle")
        if not (out / "manifest.json").is_file():
            raise EdgevlError(f"{out}: --force only replaces a bundle (a folder with manifest.json)")
        for src in (checkpoint, calibration, tokenizer):  # --force never deletes an input
            if src is not None and (Path(os.path.abspath(src)) == Path(os.path.abspath(out))
                                    or Path(os.path.abspath(out)) in Path(os.path.abspath(src)).parents):
                raise EdgevlError(f"{out}: --force would delete the input {src}; choose another --out")
        shutil.rmtree(out)
    b = export_any(checkpoint, out, arch=arch, precision=precision, opset=opset, calibration=calibration,
                   tokenizer=tokenizer, activation=activation, dynamo=dynamo, target=target,
                   charset=charset)
    m = b.manifest
    if as_json:
        emit_json({"path": str(b.path), "digest": b.digest, **m.to_dict()})
        return
    typer.echo(f"wrote {b.path}: {m.name} task={m.task} precision={m.precision}")
    for role, spec in m.models.items():
        ins = ", ".join(f"{t.name}{list(t.shape)}" for t in spec.inputs)
        outs = ", ".join(f"{t.name}{list(t.shape)}" for t in spec.outputs)
        typer.echo(f"  {role}: {ins} -> {outs}")
    parity: list[dict[str, Any]] = list(m.extra.get("parity", []))
    for r in parity:
        typer.echo(f"  parity {r['role']}: ONNX Runtime vs torch rel. error {r['rel_error']:.1e}")
    bert_parity = m.extra.get("parity_onnx_vs_torch")  # sentence encoders (MiniLM) store one dict
    if isinstance(bert_parity, dict) and "rel" in bert_parity:
        typer.echo(f"  parity text: ONNX Runtime vs torch rel. error {float(bert_parity['rel']):.1e}")
    trt_cfg = m.config.get("tensorrt") or {}
    for role, rel in (trt_cfg.get("graphs") or {}).items():
        typer.echo(f"  tensorrt {role}: {rel}, {trt_cfg['attention_nodes'][role]} EdgevlAttention nodes, "
                   f"ORT CPU parity {trt_cfg['parity_max_abs_error'][role]:.1e}")
    for note in m.source.get("notes", []):
        typer.echo(f"  note: {note}")
