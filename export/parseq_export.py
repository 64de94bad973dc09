"""Export the PARSeq-style non-autoregressive recogniser (:mod:`edgevl_export.models.parseq`) to
ONNX and check it against torch: the attention-decoder STR shape, with random weights.

Input ``image`` float32 ``[batch, 3, 32, 128]`` (batch dynamic), output ``probs``
``[batch, max_label_length + 1, num_classes]``. Parity on ONNX Runtime CPU at batch sizes other
than the traced one; relative error ≤ 1e-4 and identical greedy readings are required.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from edgevl_export.models.parseq import ParseqConfig, nar_greedy, random_model
from edgevl_export.onnx import DEFAULT_OPSET, ExportError, export_module, ort_run, rel_error

INPUT, OUTPUT = "image", "probs"
TOLERANCE = 1e-4
TRACE_BATCH = 2
PARITY_BATCHES = (1, 3)


@dataclass(frozen=True)
class ParseqExport:
    path: Path
    rel_error: float
    same_readings: bool
    ops: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "rel_error": self.rel_error, "same_readings": self.same_readings,
                "ops": self.ops}


def export_parseq(out: Path, cfg: ParseqConfig | None = None, *, seed: int = 0,
                  opset: int = DEFAULT_OPSET) -> ParseqExport:
    cfg = cfg or ParseqConfig()
    model = random_model(cfg, seed)
    h, w = cfg.image_size
    export_module(model, (torch.zeros(TRACE_BATCH, cfg.in_channels, h, w),), out, input_names=[INPUT],
                  output_names=[OUTPUT], opset=opset,
                  dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}})
    g = torch.Generator().manual_seed(seed + 1)
    worst, same = 0.0, True
    for b in PARITY_BATCHES:
        x = torch.randn((b, cfg.in_channels, h, w), generator=g)
        with torch.no_grad():
            want = model(x)
        got = ort_run(out, {INPUT: x.numpy()})[0]
        worst = max(worst, rel_error(got, want.numpy()))
        same &= nar_greedy(torch.from_numpy(np.asarray(got))) == nar_greedy(want)
    if worst > TOLERANCE or not same:
        raise ExportError(f"{out}: ONNX Runtime differs from torch (rel. error {worst:.2e}, "
                          f"same readings {same})")
    import collections

    import onnx

    ops = collections.Counter(n.op_type for n in onnx.load(str(out)).graph.node)
    return ParseqExport(out, worst, same, dict(sorted(ops.items())))
