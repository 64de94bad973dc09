"""``edgevl embed`` (text or image embeddings) and ``edgevl classify`` (CLIP zero-shot)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from edgevl.backends.base import EngineOptions
from edgevl.bundle import load_bundle
from edgevl.cli.app import app, emit_json
from edgevl.cli.checks import plain_field
from edgevl.errors import InputError
from edgevl.tasks.encoders import ImageEncoder, TextEncoder
from edgevl.tasks.zeroshot import ZeroShotClassifier, load_descriptions, load_labels, parse_labels


@app.command()
def embed(
    bundle: Path = typer.Argument(..., help="bundle directory (task text-embedding or clip)"),
    text: list[str] = typer.Option(None, "--text", "-t", help="a text to embed (repeatable)"),
    image: list[Path] = typer.Option(None, "--image", "-i", help="an image to embed (repeatable)"),
    normalize: bool = typer.Option(False, "--normalize", help="L2-normalise the embeddings"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
    backend: str = typer.Option("ort-cpu", "--backend", help="ort-cpu, openvino, auto (fastest installed), "
                                "ort-cuda, ort-trt, tensorrt"),
) -> None:
    """Print the embeddings of texts or images: one line per input (input, then the values).

    In the plain form the input is escaped (\\n, \\t, \\\\) so one input is one line.
    """
    if bool(text) == bool(image):
        raise InputError("give either --text T... or --image IMG... (one kind per call)")
    b = load_bundle(bundle)
    if text:
        inputs = [str(t) for t in text]
        emb = TextEncoder(b, EngineOptions(backend=backend), normalize=normalize).encode(inputs)
    else:
        inputs = [str(p) for p in image]
        emb = ImageEncoder(b, EngineOptions(backend=backend), normalize=normalize).encode(list(image))
    if as_json:
        emit_json({
            "bundle": str(b.path), "task": b.manifest.task, "kind": "text" if text else "image",
            "dim": int(emb.shape[1]),
            "items": [{"input": s, "norm": float(np.linalg.norm(e)), "embedding": [float(v) for v in e]}
                      for s, e in zip(inputs, emb, strict=True)],
        })
        return
    for s, e in zip(inputs, emb, strict=True):
        typer.echo(plain_field(s) + "\t" + " ".join(f"{v:.6g}" for v in e))


@app.command()
def classify(
    images: list[Path] = typer.Argument(..., help="image files"),
    bundle: Path = typer.Option(..., "--bundle", "-b", help="CLIP bundle directory (task clip)"),
    labels: str = typer.Option(None, "--labels", "-l", help='comma-separated class names, e.g. "cat,dog"'),
    labels_file: Path = typer.Option(None, "--labels-file", help="class names, one per line"),
    templates: Path = typer.Option(
        None, "--templates", help="prompt templates, one per line with {} for the class name "
        "(default: the 80 ImageNet templates of CLIP)"),
    descriptions: Path = typer.Option(
        None, "--descriptions",
        help='JSON {"label": ["description", ...]}: prompts for those classes, averaged per class'),
    k: int = typer.Option(5, "--top-k", "-k", help="labels to print per image"),
    no_cache: bool = typer.Option(False, "--no-cache", help="do not read or write the text-embedding cache"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
    backend: str = typer.Option("ort-cpu", "--backend", help="ort-cpu, openvino, auto (fastest installed), "
                                "ort-cuda, ort-trt, tensorrt"),
) -> None:
    """Zero-shot classify images against class names (prompt ensembling or descriptions)."""
    if labels is not None and labels_file is not None:
        raise InputError("give --labels or --labels-file, not both")
    if k < 1:
        raise InputError(f"--top-k must be >= 1, got {k}")
    clf = ZeroShotClassifier(load_bundle(bundle), EngineOptions(backend=backend), cache=not no_cache)
    descs = load_descriptions(descriptions) if descriptions is not None else None
    if labels is not None:
        names = parse_labels(labels, "--labels")
    elif labels_file is not None:
        names = load_labels(labels_file)
    elif descs is not None:
        names = tuple(descs)
    else:
        raise InputError("give the classes: --labels \"cat,dog\", --labels-file F or --descriptions F.json")
    clf.set_labels(names, templates, descs)
    results = clf.classify(list(images), top_k=k)
    if as_json:
        emit_json({"bundle": str(bundle), "labels": list(clf.labels),
                   "results": [r.to_dict() for r in results]})
        return
    for r in results:
        typer.echo(f"{r.image}: " + ", ".join(f"{p.label} {p.score:.3f}" for p in r.predictions))
