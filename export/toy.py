"""A CLIP trained from scratch on generated coloured shapes, exported, then classified zero-shot.

No pretrained CLIP is available offline, so this proves the whole path end to end: rendered
images + captions → contrastive training (torch, CPU) → ``.safetensors`` checkpoint with its
config → ``edgevl export`` (checkpoint → ONNX bundle) → ``ZeroShotClassifier`` on ONNX Runtime.

Some colour/shape combinations are held out: no training image shows them and no training
caption names them. Zero-shot accuracy on those, over all 40 "a photo of a {colour} {shape}"
classes (chance 1/40), measures whether the exported pair of encoders composes what it learnt.

    python -m edgevl_export.toy --out /tmp/toy --steps 600     # a few minutes on 2 CPU cores
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from edgevl_export.clip_bundle import OPENAI_MEAN, OPENAI_STD
from edgevl_export.models.clip import CLIP, CLIPConfig, TextConfig, VisionConfig, build_model
from edgevl_export.models.lightclip import MobileVisionConfig, lightclip_config

from edgevl.bench.machine import load_average, machine_record

COLORS: dict[str, tuple[int, int, int]] = {  # BGR
    "red": (40, 40, 220), "green": (50, 180, 40), "blue": (220, 80, 30), "yellow": (30, 220, 230),
    "purple": (170, 40, 150), "orange": (20, 140, 255), "cyan": (230, 220, 40), "white": (250, 250, 250),
}
SHAPES = ("circle", "square", "triangle", "cross", "ring")
# one combination per colour (every shape at least once), always seen in other combinations;
# many colours per shape keep the shape features from being colour-specific
HELD_OUT = tuple((c, SHAPES[i % len(SHAPES)]) for i, c in enumerate(COLORS))
TRAIN_TEMPLATES = ("a {c} {s}", "a photo of a {c} {s}", "a picture of a {c} {s}", "{c} {s}",
                   "a {c} {s} on a grey background", "there is a {c} {s}")
EVAL_TEMPLATE = "a photo of a {c} {s}"
# single-attribute captions ("a red shape", "a circle") push the embeddings to factor colour and
# shape, which is what lets held-out combinations be recognised
COLOR_TEMPLATES = ("a {c} shape", "something {c}")
SHAPE_TEMPLATES = ("a {s}", "a photo of a {s}")
IMAGE_SIZE = 32
DARK = "_dark"  # shape-only training images in an unnamed colour: shape features that ignore colour


def all_classes() -> list[tuple[str, str]]:
    return [(c, s) for c in COLORS for s in SHAPES]


def train_classes() -> list[tuple[str, str]]:
    return [cs for cs in all_classes() if cs not in HELD_OUT]


def render(color: str, shape: str, rng: np.random.Generator, size: int = IMAGE_SIZE) -> np.ndarray:
    """An HxWx3 uint8 BGR image: one shape of a jittered colour on a noisy grey background."""
    bg = int(rng.integers(70, 170))
    img = np.clip(rng.normal(bg, 12, (size, size, 3)), 0, 255).astype(np.uint8)
    if color == DARK:  # an unnamed colour: black to dark grey
        col = (int(rng.integers(0, 40)),) * 3
    else:
        col = tuple(int(np.clip(v + rng.integers(-25, 26), 0, 255)) for v in COLORS[color])
    r = int(rng.integers(size // 4, size // 3 + 1))
    cx, cy = (int(rng.integers(r + 1, size - r - 1)) for _ in range(2))
    if shape == "circle":
        cv2.circle(img, (cx, cy), r, col, -1, cv2.LINE_AA)
    elif shape == "square":
        cv2.rectangle(img, (cx - r, cy - r), (cx + r, cy + r), col, -1)
    elif shape == "triangle":
        pts = np.array([[cx, cy - r], [cx - r, cy + r], [cx + r, cy + r]], np.int32)
        cv2.fillPoly(img, [pts], col, cv2.LINE_AA)
    elif shape == "cross":
        t = max(2, r // 3)
        cv2.rectangle(img, (cx - r, cy - t), (cx + r, cy + t), col, -1)
        cv2.rectangle(img, (cx - t, cy - r), (cx + t, cy + r), col, -1)
    elif shape == "ring":
        cv2.circle(img, (cx, cy), r, col, max(2, r // 3), cv2.LINE_AA)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return img


def to_tensor(images: Sequence[np.ndarray]) -> torch.Tensor:
    """BGR uint8 → normalised RGB NCHW, exactly as the bundle's manifest preprocessing does."""
    x = np.stack(images)[..., ::-1].astype(np.float32) / 255.0
    x = (x - np.asarray(OPENAI_MEAN, np.float32)) / np.asarray(OPENAI_STD, np.float32)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def toy_config(arch: str, vocab_size: int, context_length: int = 12) -> CLIPConfig:
    eot = vocab_size - 1
    if arch == "lightclip":
        stages = ((1, 16, 1, 1), (4, 24, 1, 2), (4, 32, 1, 2))
        vision = MobileVisionConfig(IMAGE_SIZE, 16, stages, 64, "hardswish")
        return lightclip_config(embed_dim=64, vision=vision, text_layers=2, text_width=64, text_heads=4,
                                context_length=context_length, vocab_size=vocab_size, eot_id=eot)
    if arch == "vit":
        return CLIPConfig(64, VisionConfig(IMAGE_SIZE, 3, 96, 4, heads=4),
                          TextConfig(context_length, vocab_size, 64, 4, 2, eot_id=eot), quick_gelu=False)
    raise ValueError(f"toy arch {arch!r}: lightclip or vit")


@dataclass(frozen=True)
class ToyResult:
    arch: str
    steps: int
    batch: int
    train_seconds: float
    train_cpu_seconds: float
    chance: float
    n_heldout_images: int
    heldout: dict[str, float]  # top1 / color / shape, prompts from the template
    heldout_descriptions: dict[str, float]  # the same with per-class descriptions averaged
    seen: dict[str, float]
    bundle: str

    @property
    def heldout_top1(self) -> float:
        return self.heldout["top1"]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def make_batch(classes: Sequence[tuple[str, str]], size: int, rng: np.random.Generator, single: float = 0.3,
               dark: float = 0.2) -> tuple[torch.Tensor, list[str], np.ndarray]:
    """Images, one caption each, and the [image, caption] matrix of which captions are true of which image.

    Captions name colour and shape, or (``single``) only one of them; ``dark`` of the images show
    their shape in an unnamed dark colour with a shape-only caption.
    """
    images, captions, attrs = [], [], []
    for k in rng.integers(0, len(classes), size):
        c, s = classes[k]
        u = rng.random()
        if u < dark:
            c = DARK
            captions.append(SHAPE_TEMPLATES[rng.integers(len(SHAPE_TEMPLATES))].format(s=s))
            attrs.append((None, s))
        elif u < dark + single / 2:
            captions.append(COLOR_TEMPLATES[rng.integers(len(COLOR_TEMPLATES))].format(c=c))
            attrs.append((c, None))
        elif u < dark + single:
            captions.append(SHAPE_TEMPLATES[rng.integers(len(SHAPE_TEMPLATES))].format(s=s))
            attrs.append((None, s))
        else:
            captions.append(TRAIN_TEMPLATES[rng.integers(len(TRAIN_TEMPLATES))].format(c=c, s=s))
            attrs.append((c, s))
        images.append((c, s))
    pos = np.array([[(ac is None or ac == c) and (as_ is None or as_ == s) for ac, as_ in attrs]
                    for c, s in images], dtype=np.float32)
    return to_tensor([render(c, s, rng) for c, s in images]), captions, pos


def train(
    out: Path, *, arch: str = "lightclip", steps: int = 600, batch: int = 96, lr: float = 2e-3, seed: int = 0,
    log: bool = True,
) -> tuple[CLIP, Path, Path]:
    """Train; returns (model, checkpoint .safetensors, tokenizer folder)."""
    from edgevl_export.loaders.files import save_checkpoint
    from edgevl_export.tokenizer import load_clip_tokenizer, train_clip_bpe

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    out.mkdir(parents=True, exist_ok=True)
    templates = (*TRAIN_TEMPLATES, EVAL_TEMPLATE, *COLOR_TEMPLATES, *SHAPE_TEMPLATES)
    corpus = [t.format(c=c, s=s) for c, s in all_classes() for t in templates]
    vocab, merges = train_clip_bpe(corpus * 4, num_merges=64)
    tok_dir = out / "tokenizer"
    tok_dir.mkdir(exist_ok=True)
    (tok_dir / "vocab.json").write_text(json.dumps(vocab))
    (tok_dir / "merges.txt").write_text("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n")
    cfg = toy_config(arch, len(vocab))
    tok = load_clip_tokenizer(tok_dir, context_length=cfg.text.context_length)
    model = build_model(cfg).train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    classes = train_classes()
    for step in range(steps):
        images, captions, pos = make_batch(classes, batch, rng)
        ids = torch.tensor([e.ids for e in tok.encode_batch(captions)], dtype=torch.int64)
        img = F.normalize(model.encode_image(images), dim=-1)
        txt = F.normalize(model.encode_text(ids), dim=-1)
        logits = model.logit_scale.exp().clamp(max=100) * img @ txt.t()
        p = torch.from_numpy(pos)  # [image, caption]: the caption is true of the image
        loss = 0.5 * (F.cross_entropy(logits, p / p.sum(1, keepdim=True))
                      + F.cross_entropy(logits.t(), (p / p.sum(0, keepdim=True)).t()))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if log and (step % 100 == 0 or step == steps - 1):
            print(f"step {step:4d}  loss {loss.item():.3f}", flush=True)
    model.eval()
    ckpt = save_checkpoint(model, out / f"toy-{arch}.safetensors", {**cfg.to_dict(), "name": f"toy-{arch}"})
    return model, ckpt, tok_dir


def class_prompts(descriptions: bool) -> dict[str, list[str]]:
    """Prompts per class: the template, or descriptions (template + colour-only + shape-only prompts,
    averaged by the classifier: cf. "Improved Zero-Shot Classification by Adapting VLMs with Text
    Descriptions")."""
    out = {}
    for c, s in all_classes():
        prompts = [EVAL_TEMPLATE.format(c=c, s=s)]
        if descriptions:
            prompts += [COLOR_TEMPLATES[0].format(c=c), SHAPE_TEMPLATES[0].format(s=s)]
        out[f"{c} {s}"] = prompts
    return out


def _scores(preds: list[str], truth: list[str]) -> dict[str, float]:
    pairs = list(zip(preds, truth, strict=True))
    return {"top1": float(np.mean([p == t for p, t in pairs])),
            "color": float(np.mean([p.split()[0] == t.split()[0] for p, t in pairs])),
            "shape": float(np.mean([p.split()[1] == t.split()[1] for p, t in pairs]))}


def evaluate(bundle_dir: Path, n_per_class: int = 40, seed: int = 123) -> dict[str, dict[str, float]]:
    """Zero-shot through the exported bundle on ONNX Runtime (the runtime's ZeroShotClassifier)."""
    from edgevl.tasks.zeroshot import ZeroShotClassifier

    clf = ZeroShotClassifier(bundle_dir, cache=False)
    rng = np.random.default_rng(seed)
    out: dict[str, dict[str, float]] = {}
    for split, combos in (("heldout", list(HELD_OUT)), ("seen", train_classes())):
        images = [render(c, s, rng) for c, s in combos for _ in range(n_per_class)]
        truth = [f"{c} {s}" for c, s in combos for _ in range(n_per_class)]
        embeds = clf.image_encoder.encode(images)
        for descriptions in (False, True):
            clf.set_prompts(class_prompts(descriptions))
            preds = [r.label for r in clf.classify_embeddings(embeds, 1)]
            key = split + ("_descriptions" if descriptions else "")
            out[key] = {**_scores(preds, truth), "n": len(images)}
    return out


def run(out: Path, arch: str = "lightclip", steps: int = 600, batch: int = 96, seed: int = 0,
        n_per_class: int = 40, log: bool = True) -> ToyResult:
    """Train → save checkpoint → export with the same code path as ``edgevl export`` → evaluate."""
    from edgevl.cli.export import export_any

    t0, c0 = time.perf_counter(), time.process_time()
    _, ckpt, tok_dir = train(out, arch=arch, steps=steps, batch=batch, seed=seed, log=log)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    bundle = export_any(ckpt, out / "bundle", tokenizer=tok_dir / "vocab.json")
    s = evaluate(bundle.path, n_per_class=n_per_class)
    return ToyResult(arch=arch, steps=steps, batch=batch, train_seconds=round(seconds, 1),
                     train_cpu_seconds=round(cpu, 1), chance=1 / len(all_classes()),
                     n_heldout_images=int(s["heldout"]["n"]), heldout=s["heldout"],
                     heldout_descriptions=s["heldout_descriptions"], seen=s["seen"], bundle=str(bundle.path))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--arch", choices=("lightclip", "vit"), default="lightclip")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=96)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--results", type=Path, help="append the result as JSON to this file")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    load_before = load_average()
    r = run(a.out, a.arch, a.steps, a.batch, a.seed)
    print(json.dumps(r.to_dict(), indent=2))
    if a.results:
        prev = json.loads(a.results.read_text()) if a.results.is_file() else {"runs": []}
        machine = machine_record(load_before, ("torch",), threads=a.threads)
        prev["runs"].append({**r.to_dict(), "machine": machine,
                             "command": "python -m edgevl_export.toy " + " ".join(argv or sys.argv[1:])})
        a.results.write_text(json.dumps(prev, indent=2) + "\n")


if __name__ == "__main__":
    main()
