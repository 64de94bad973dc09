"""End to end: train a tiny CLIP from scratch on generated shapes, export it with the same code as
``edgevl export``, classify held-out colour/shape combinations zero-shot through the bundle on ONNX
Runtime (edgevl.tasks.zeroshot.ZeroShotClassifier). The full-size run is ``python -m
edgevl_export.toy`` (results in benchmarks/results/zeroshot_toy.json)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edgevl_export import toy  # noqa: E402

from edgevl.bundle import load_bundle  # noqa: E402


def test_batch_positives_follow_the_captions() -> None:
    rng = np.random.default_rng(0)
    images, captions, pos = toy.make_batch(toy.train_classes(), 64, rng)
    assert images.shape == (64, 3, toy.IMAGE_SIZE, toy.IMAGE_SIZE) and len(captions) == 64
    assert pos.shape == (64, 64) and np.all(np.diag(pos) == 1)  # each caption is true of its own image
    for i, cap in enumerate(captions):  # a caption naming a colour is never true of a dark image
        named = [c for c in toy.COLORS if c in cap.split()]
        if named:
            assert pos[:, i].sum() >= 1
    held = {f"{c} {s}" for c, s in toy.HELD_OUT}
    assert not any(h in cap for h in held for cap in captions)


def test_render_is_deterministic_and_shapes_differ() -> None:
    a = toy.render("red", "circle", np.random.default_rng(1))
    b = toy.render("red", "circle", np.random.default_rng(1))
    c = toy.render("red", "square", np.random.default_rng(1))
    assert a.shape == (toy.IMAGE_SIZE, toy.IMAGE_SIZE, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_tiny_clip_zero_shot_above_chance(tmp_path: Path) -> None:
    torch.set_num_threads(2)
    r = toy.run(tmp_path, arch="lightclip", steps=100, batch=48, n_per_class=12, log=False)
    b = load_bundle(r.bundle)
    assert b.manifest.task == "clip" and b.manifest.source["format"] == "safetensors"
    n = len(toy.all_classes())
    assert r.chance == pytest.approx(1 / n)
    # seen combinations: the exported encoders learnt the task
    assert r.seen["top1"] > 0.3, r  # 12x chance; ~0.6 here after 100 steps
    # held-out combinations (never shown, never named): clearly above chance (1/40)
    assert r.heldout["color"] > 0.5, r
    assert max(r.heldout["top1"], r.heldout_descriptions["top1"]) > 4 * r.chance, r
