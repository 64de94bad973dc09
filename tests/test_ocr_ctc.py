"""Greedy CTC decoding on hand-made probabilities (no model)."""

from __future__ import annotations

import numpy as np
import pytest

from edgevl.errors import InputError
from edgevl.text.ctc import ctc_greedy

CHARSET = ["<blank>", "a", "b", "c", " "]


def _probs(seq: list[int], conf: list[float] | None = None, n: int = len(CHARSET)) -> np.ndarray:
    """One-hot-ish (T, C) probabilities: ``conf`` on the chosen class, the rest spread evenly."""
    conf = conf or [0.9] * len(seq)
    p = np.zeros((len(seq), n), np.float32)
    for t, (k, c) in enumerate(zip(seq, conf, strict=True)):
        p[t, :] = (1 - c) / (n - 1)
        p[t, k] = c
    return p


def test_repeats_merge_and_blank_separates_doubles() -> None:
    # a a _ b b _ b c → "abbc"
    p = _probs([1, 1, 0, 2, 2, 0, 2, 3], [0.9, 0.6, 0.99, 0.8, 0.7, 0.99, 0.5, 0.95])
    (d,) = ctc_greedy(p[None], CHARSET)
    assert d.text == "abbc"
    # a char's confidence is the probability of its first frame
    assert d.char_scores == pytest.approx((0.9, 0.8, 0.5, 0.95))
    assert d.score == pytest.approx(np.mean([0.9, 0.8, 0.5, 0.95]))


def test_batch_lengths_and_empty() -> None:
    a = _probs([1, 4, 2, 0, 3, 3])  # "a bc"
    b = _probs([0, 0, 0, 0, 0, 0])  # all blank → ""
    out = ctc_greedy(np.stack([a, b, a]), CHARSET, lengths=[6, 6, 3])
    assert [d.text for d in out] == ["a bc", "", "a b"]
    assert out[1].score == 0.0 and out[1].char_scores == ()


def test_blank_elsewhere_and_errors() -> None:
    cs = ["a", "b", "<blank>"]
    p = _probs([0, 2, 0, 1, 1], n=3)
    assert ctc_greedy(p[None], cs, blank=2)[0].text == "aab"
    with pytest.raises(InputError):
        ctc_greedy(p, cs, blank=2)  # not batched
    with pytest.raises(InputError):
        ctc_greedy(p[None], CHARSET)  # class count disagrees
    with pytest.raises(InputError):
        ctc_greedy(p[None], cs, blank=5)
    with pytest.raises(InputError):
        ctc_greedy(p[None], cs, blank=2, lengths=[1, 2])
