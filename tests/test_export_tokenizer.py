"""CLIP tokenizer conversion: parity with an independent reference on a few hundred strings.

No CLIP vocabulary ships offline, so a small vocabulary is trained here in CLIP's format. Two
references: (1) OpenAI's simple_tokenizer algorithm re-implemented below from its description
(regex split, byte→unicode, greedy lowest-rank BPE with ``</w>``), (2) ``transformers``'
CLIPTokenizer built from the same vocab.json/merges.txt (in transformers 5 there is no python
"slow" tokenizer any more; its CLIPTokenizer builds its own ``tokenizers`` pipeline).
"""

from __future__ import annotations

import gzip
import json
import random
import unicodedata
from pathlib import Path

import pytest
import regex  # installed with transformers (the export extra)
from edgevl_export.tokenizer import (
    CLIP_SPLIT,
    EOT,
    SOT,
    build_clip_tokenizer,
    bytes_to_unicode,
    load_clip_tokenizer,
    train_clip_bpe,
)

from edgevl.errors import CheckpointError

_WORDS_TEXT = (
    "a red green blue yellow circle square triangle photo of the cat dog's isn't running jumped "
    "café naïve Über 東京 北京 123 4567 !!! ... can't we'll they're I'm you've she'd "
    "hello-world e-mail http://x.org/a?b=1 #tag @user 🙂 🚀 ß straße ÉCOLE œuvre ﬁne Ωmega"
)
WORDS = _WORDS_TEXT.split()

VocabFiles = tuple[Path, dict[str, int], list[tuple[str, str]]]


def _corpus(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12))) for _ in range(n)]


class ReferenceCLIPTokenizer:
    """OpenAI's algorithm, written from its description (no ftfy/html step: see tokenizer.py)."""

    def __init__(self, vocab: dict[str, int], merges: list[tuple[str, str]]) -> None:
        self.encoder = vocab
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.byte_encoder = bytes_to_unicode()
        self.pat = regex.compile(CLIP_SPLIT, regex.IGNORECASE)

    def bpe(self, token: str) -> list[str]:
        word = [*token[:-1], token[-1] + "</w>"]
        while len(word) > 1:
            pairs = [(word[i], word[i + 1]) for i in range(len(word) - 1)]
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            merged: list[str] = []
            i = 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        return word

    def encode(self, text: str, context_length: int) -> list[int]:
        text = regex.sub(r"\s+", " ", unicodedata.normalize("NFC", text)).strip().lower()
        ids: list[int] = []
        for piece in self.pat.findall(text):
            piece = "".join(self.byte_encoder[b] for b in piece.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self.bpe(piece))
        ids = [self.encoder[SOT], *ids, self.encoder[EOT]]
        if len(ids) > context_length:
            ids = [*ids[: context_length - 1], self.encoder[EOT]]
        return ids


@pytest.fixture(scope="module")
def vocab_files(tmp_path_factory: pytest.TempPathFactory) -> VocabFiles:
    vocab, merges = train_clip_bpe(_corpus(3000, seed=0), num_merges=400)
    d = tmp_path_factory.mktemp("clipvocab")
    (d / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (d / "merges.txt").write_text("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n")
    return d, vocab, merges


def _test_strings() -> list[str]:
    strings = _corpus(300, seed=1)
    strings += [
        "", "   ", "A  B\tC\nD", "UPPER lower MiXeD", "café ≠ cafe\u0301", "x" * 300,
        " ".join(["word"] * 120), "😀" * 40, "12345678901234567890", "don't STOP'S", "a—b–c", "ǅ ǆ Ǆ",
    ]
    return strings


def test_trained_vocab_has_clip_layout(vocab_files: VocabFiles) -> None:
    _, vocab, merges = vocab_files
    assert vocab[SOT] == len(vocab) - 2 and vocab[EOT] == len(vocab) - 1
    assert len(vocab) == 512 + len(merges) + 2
    assert vocab["!"] == 0  # OpenAI's byte order starts at '!'


def test_tokenizer_matches_reference_algorithm(vocab_files: VocabFiles) -> None:
    d, vocab, merges = vocab_files
    ctx = 32
    ours = load_clip_tokenizer(d, context_length=ctx)
    ref = ReferenceCLIPTokenizer(vocab, merges)
    strings = _test_strings()
    mismatches = [s for s in strings if ours.encode(s).ids != ref.encode(s, ctx)]
    assert not mismatches, mismatches[:5]
    long_ids = ours.encode("x " * 200).ids
    assert len(long_ids) == ctx and long_ids[0] == vocab[SOT] and long_ids[-1] == vocab[EOT]


def test_tokenizer_matches_transformers(vocab_files: VocabFiles) -> None:
    transformers = pytest.importorskip("transformers")
    d, _, _ = vocab_files
    ctx = 32
    ours = load_clip_tokenizer(d, context_length=ctx)
    hf = transformers.CLIPTokenizer.from_pretrained(str(d))  # reads vocab.json + merges.txt
    strings = _test_strings()
    want = hf(strings, truncation=True, max_length=ctx)["input_ids"]
    got = [ours.encode(s).ids for s in strings]
    bad = [(s, g, w) for s, g, w in zip(strings, got, want, strict=True) if g != w]
    assert not bad, bad[:3]


def test_bpe_simple_vocab_and_json_round_trip(
    vocab_files: VocabFiles, tmp_path: Path
) -> None:
    d, _, merges = vocab_files
    gz = tmp_path / "bpe_simple_vocab_16e6.txt.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n")
    from_gz = load_clip_tokenizer(gz, context_length=20)
    from_hf = load_clip_tokenizer(d, context_length=20)
    (tmp_path / "tokenizer.json").write_text(from_hf.to_str())
    from_json = load_clip_tokenizer(tmp_path / "tokenizer.json", context_length=20)
    for s in _test_strings()[:50]:
        assert from_gz.encode(s).ids == from_hf.encode(s).ids == from_json.encode(s).ids
    # a batch pads to its longest with the pad id
    batch = from_hf.encode_batch(["a", "a red circle"])
    assert len(batch[0].ids) == len(batch[1].ids) and batch[0].ids[-1] == 0


def test_tokenizer_errors(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no tokenizer files"):
        load_clip_tokenizer(tmp_path)
    (tmp_path / "vocab.json").write_text("{}")
    with pytest.raises(CheckpointError, match=r"merges\.txt"):
        load_clip_tokenizer(tmp_path / "vocab.json")
    (tmp_path / "merges.txt").write_text("#version: 0.2\na b\n")
    with pytest.raises(CheckpointError, match="special token"):
        load_clip_tokenizer(tmp_path / "vocab.json")
    with pytest.raises(CheckpointError, match="special token"):
        build_clip_tokenizer({"a": 0}, [])


def test_hf_saved_tokenizer_json_is_accepted(vocab_files: VocabFiles, tmp_path: Path) -> None:
    """A tokenizer.json written by transformers (RobertaProcessing post-processor) gives our ids."""
    transformers = pytest.importorskip("transformers")
    d, _, _ = vocab_files
    transformers.CLIPTokenizer.from_pretrained(str(d)).save_pretrained(str(tmp_path))
    theirs = load_clip_tokenizer(tmp_path / "tokenizer.json", context_length=24)
    ours = load_clip_tokenizer(d, context_length=24)
    for s in _test_strings():
        assert theirs.encode(s).ids == ours.encode(s).ids, s


def test_runtime_tokenizer_cleans_text_like_openai(vocab_files: VocabFiles, tmp_path: Path) -> None:
    """CLIP bundles ask the runtime for OpenAI's ``basic_clean`` (``text_clean: ftfy_html``): mojibake
    and (doubly) escaped HTML tokenise as the clean text does; clean text is untouched."""
    from edgevl.errors import BundleError
    from edgevl.text.tokenizer import Tokenizer

    d, vocab, merges = vocab_files
    ctx = 32
    path = tmp_path / "tokenizer.json"
    path.write_text(load_clip_tokenizer(d, context_length=ctx).to_str())
    ours, plain = Tokenizer(path, ctx, clean="ftfy_html"), Tokenizer(path, ctx)
    ref = ReferenceCLIPTokenizer(vocab, merges)
    pairs = [
        ("tom &amp; jerry", "tom & jerry"),
        ("tom &amp;amp; jerry", "tom & jerry"),
        ("the mona lisa doesnÃ¢â‚¬â„¢t have eyebrows", "the mona lisa doesn't have eyebrows"),
        ("cafÃ© au lait", "café au lait"),
        ("  &lt;b&gt;bold&lt;/b&gt; ", "<b>bold</b>"),
        # ftfy unfolds Latin ligatures (OpenAI's tokenizer sees "fine", not "ﬁne"); nothing else in
        # the corpus changes
        *((s, s.replace("ﬁ", "fi")) for s in _corpus(40, seed=3)),
    ]
    enc = ours([dirty for dirty, _ in pairs])
    for i, (dirty, clean) in enumerate(pairs):
        want = ref.encode(clean, ctx)
        n = int(enc.attention_mask[i].sum())
        assert enc.input_ids[i, :n].tolist() == want, dirty
    assert ours.tokens("tom &amp; jerry") == plain.tokens("tom & jerry")
    assert plain.tokens("tom &amp; jerry") != plain.tokens("tom & jerry")  # the step is what differs
    with pytest.raises(BundleError, match="text_clean"):
        Tokenizer(path, ctx, clean="nfkc")
