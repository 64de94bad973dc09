"""``edgevl embed`` (text or image embeddings) and ``edgevl classify`` (CLIP zero-shot)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import typer

from edgevl.bundle import load_bundle
from edgevl.cli.app import app, emit_json
from edgevl.cli.checks import BatchErrors, flag, number_in, plain_field
from edgevl.errors import ImageError, InputError
from edgevl.safeio import term_safe
from edgevl.tasks.encoders import ImageEncoder, TextEncoder
from edgevl.tasks.zeroshot import ZeroShotClassifier, load_descriptions, load_labels, parse_labels


@app.command()
def embed(
    bundle: Path = typer.Argument(..., help="bundle directory (task text-embedding or clip)"),
    text: list[str] = typer.Option(None, "--text", "-t", help="a text to embed (repeatable)"),
    image: list[Path] = typer.Option(None, "--image", "-i", help="an image to embed (repeatable; one that "
                                     "cannot be read is one error line, the others are embedded, exit 2)"),
    normalize: bool = flag("--normalize", help="L2-normalise the embeddings"),
    as_json: bool = flag("--json", help="print JSON"),
) -> None:
    """Print the embeddings of texts or images: one line per input (input, then the values).

    In the plain form the input is escaped (\\n, \\t, \\\\) so one input is one line.
    """
    if bool(text) == bool(image):
        raise InputError("give either --text T... or --image IMG... (one kind per call)")
    b = load_bundle(bundle)
    errors = BatchErrors()
    if text:
        inputs = [str(t) for t in text]
        emb = TextEncoder(b, normalize=normalize).encode(inputs)
    else:
        enc = ImageEncoder(b, normalize=normalize)
        pairs = each_readable(list(image), enc.encode, errors)
        if not pairs:
            errors.finish()
        inputs = [str(p) for ps, _ in pairs for p in ps]
        emb = np.concatenate([e for _, e in pairs])
    if as_json:
        emit_json({
            "bundle": str(b.path), "task": b.manifest.task, "kind": "text" if text else "image",
            "dim": int(emb.shape[1]),
            "items": [{"input": s, "norm": float(np.linalg.norm(e)), "embedding": [float(v) for v in e]}
                      for s, e in zip(inputs, emb, strict=True)],
        })
    else:
        for s, e in zip(inputs, emb, strict=True):
            typer.echo(plain_field(s) + "\t" + " ".join(f"{v:.6g}" for v in e))
    errors.finish()


@app.command()
def classify(
    images: list[Path] = typer.Argument(..., help="image files (PNG, JPEG, BMP, WebP, TIFF); one that "
                                        "cannot be read is one error line, the others are classified, "
                                        "exit code 2"),
    bundle: Path = typer.Option(..., "--bundle", "-b", help="CLIP bundle directory (task clip)"),
    labels: str = typer.Option(None, "--labels", "-l", help='comma-separated class names, e.g. "cat,dog"'),
    labels_file: Path = typer.Option(None, "--labels-file", help="class names, one per line"),
    templates: Path = typer.Option(
        None, "--templates", help="prompt templates, one per line with {} for the class name "
        "(default: the 80 ImageNet templates of CLIP)"),
    descriptions: Path = typer.Option(
        None, "--descriptions",
        help='JSON {"label": ["description", ...]}: prompts for those classes, averaged per class'),
    k: int = typer.Option(5, "--top-k", "-k", help="labels to print per image",
                          callback=number_in(1, 100_000)),
    no_cache: bool = flag("--no-cache", help="do not read or write the text-embedding cache"),
    as_json: bool = flag("--json", help="print JSON"),
) -> None:
    """Zero-shot classify images against class names (prompt ensembling or descriptions)."""
    if labels is not None and labels_file is not None:
        raise InputError("give --labels or --labels-file, not both")
    clf = ZeroShotClassifier(load_bundle(bundle), cache=not no_cache)
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
    errors = BatchErrors()
    results = [r for _, rs in each_readable(list(images), lambda ims: clf.classify(ims, top_k=k), errors)
               for r in rs]
    if as_json:
        emit_json({"bundle": str(bundle), "labels": list(clf.labels),
                   "results": [r.to_dict() for r in results]})
    else:
        for r in results:
            scores = ", ".join(f"{p.label} {p.score:.3f}" for p in r.predictions)
            typer.echo(term_safe(f"{r.image}: {scores}"))
    errors.finish()


T = TypeVar("T")


def each_readable(paths: list[Path], run: Callable[[list[Path]], T], errors: BatchErrors,
                  chunk: int = 32) -> list[tuple[list[Path], T]]:
    """``run`` over ``paths`` a chunk at a time (the encoder decodes one batch at a time); a chunk
    holding an unreadable image is retried one image at a time, each bad one reported on
    ``errors`` and left out. Returns (the paths of each call, its result) in input order."""
    out: list[tuple[list[Path], T]] = []
    for i in range(0, len(paths), chunk):
        part = paths[i:i + chunk]
        try:
            out.append((part, run(part)))
            continue
        except ImageError:
            pass
        for p in part:
            try:
                out.append(([p], run([p])))
            except ImageError as e:
                errors.report(e)
    return out
