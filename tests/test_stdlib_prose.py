"""benchmarks/stdlib_prose.py: the int8 MiniLM calibration/guard text is reproducible and mixed as said."""

from __future__ import annotations

from pathlib import Path

from conftest import load_script

prose = load_script(Path(__file__).resolve().parent.parent / "benchmarks" / "stdlib_prose.py", "stdlib_prose")


def test_sentences_are_reproducible_unique_and_bounded() -> None:
    a = prose.sentences(("json", "textwrap", "fnmatch"))
    assert a == prose.sentences(("json", "textwrap", "fnmatch"))  # no id()-based dedup, no set order
    assert len(a) == len(set(a)) > 20
    assert all(3 <= len(s.split()) <= 40 and ">>>" not in s for s in a)
    # a module missing from this Python is skipped, not an error
    assert prose.sentences(("json", "no_such_module_here")) == prose.sentences(("json",))


def test_mixture_cuts_spans_out_of_the_texts() -> None:
    texts = [" ".join(f"w{i}_{j}" for j in range(20)) for i in range(400)]
    mixed = prose.mixture(texts, seed=1)
    assert mixed == prose.mixture(texts, seed=1) and mixed != prose.mixture(texts, seed=2)
    lengths = [len(m.split()) for m in mixed]
    whole = sum(n == 20 for n in lengths) / len(texts)
    short = sum(n <= 3 for n in lengths) / len(texts)
    mid = sum(4 <= n <= 10 for n in lengths) / len(texts)
    assert abs(whole - 0.5) < 0.08 and abs(short - 0.3) < 0.07 and abs(mid - 0.2) < 0.06
    for t, m in zip(texts, mixed, strict=True):
        assert f" {m} " in f" {t} "  # a contiguous span of its own sentence
