"""benchmarks/stdlib_prose.py: the int8 MiniLM calibration/guard text is reproducible and mixed as said."""

from __future__ import annotations

import difflib
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


def test_noisy_replaces_a_seeded_share_with_variants_of_the_same_text() -> None:
    texts = [f"The quick brown fox {i} jumps over the lazy dog and returns a value." for i in range(600)]
    out = prose.noisy(texts, seed=3, share=0.3)
    assert out == prose.noisy(texts, seed=3, share=0.3) and out != prose.noisy(texts, seed=4, share=0.3)
    assert prose.noisy(texts, seed=3, share=0.0) == texts
    changed = [(t, o) for t, o in zip(texts, out, strict=True) if o != t]
    assert abs(len(changed) / len(texts) - 0.3) < 0.06
    # every variant is still recognisably its own sentence: most of its letters, in order
    for t, o in changed:
        assert difflib.SequenceMatcher(None, t.lower(), o.lower()).ratio() > 0.6, (t, o)
    everything = prose.noisy(texts, seed=5, share=1.0)
    assert all(o != t for t, o in zip(texts, everything, strict=True))
    joined = " ".join(everything)
    # the documented kinds of noise all occur: capitals, look-alike digits, punctuation runs, glued words
    assert sum(o.isupper() for o in everything) > 0.15 * len(texts)  # whole-text capitals, 1 in 4
    assert "0" in joined.replace("0.", "") and any(c in joined for c in "()[]|~")
    pairs = ("thequick", "quickbrown", "brownfox", "overthe", "thelazy", "lazydog", "dogand", "andreturns")
    assert sum(p in o.lower() for o in everything for p in pairs) > 10
    words = {w.lower() for t in texts for w in t.split()}
    altered = sum(w.lower() not in words for o in everything for w in o.split())  # cut/altered/inserted
    assert altered > len(texts)
