"""PARSeq-style non-autoregressive recogniser: ONNX export with random weights, parity with torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from edgevl_export.models.parseq import ParseqConfig, nar_greedy, random_model  # noqa: E402
from edgevl_export.onnx import ort_run  # noqa: E402
from edgevl_export.parseq_export import export_parseq  # noqa: E402

TINY = ParseqConfig(embed_dim=32, heads=2, enc_depth=1, dec_depth=2, max_label_length=7, num_classes=11)


def test_export_parity_and_single_pass(tmp_path: Path) -> None:
    r = export_parseq(tmp_path / "parseq.onnx", TINY, seed=3)
    assert r.rel_error <= 1e-4 and r.same_readings
    assert "Loop" not in r.ops and "If" not in r.ops  # one static pass, no decoding loop
    assert r.ops["Softmax"] >= 1 + 2 * 2  # attention in the encoder block and both decoder streams
    x = np.random.default_rng(0).normal(size=(4, 3, 32, 128)).astype(np.float32)
    got = ort_run(r.path, {"image": x})[0]
    assert got.shape == (4, 8, 11)
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-5)
    with torch.no_grad():
        want = random_model(TINY, seed=3)(torch.from_numpy(x)).numpy()
    assert np.abs(got - want).max() <= 1e-5


def test_output_depends_on_image_and_slot() -> None:
    model = random_model(TINY, seed=1)
    x = torch.randn(2, 3, 32, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        p = model(x)
    assert (p[0] - p[1]).abs().max() > 1e-4  # the cross-attention reads the image
    assert (p[0, 0] - p[0, 1]).abs().max() > 1e-4  # each slot has its own position query


def test_nar_greedy_stops_at_eos() -> None:
    probs = torch.zeros(2, 4, 5)
    probs[0, [0, 1, 2, 3], [3, 4, 0, 2]] = 1  # "3 4" then EOS
    probs[1, :, 1] = 1  # no EOS: all slots
    assert nar_greedy(probs) == [[3, 4], [1, 1, 1, 1]]
