"""CLIP's byte-level BPE as a Hugging Face ``tokenizers`` JSON file.

Sources: Hugging Face ``vocab.json`` + ``merges.txt``, OpenAI/open_clip's
``bpe_simple_vocab_16e6.txt.gz``, or an existing ``tokenizer.json``. The result reproduces
OpenAI's ``simple_tokenizer``: whitespace collapsed, lower-cased, split with CLIP's regex
(contractions, letter runs, single digits, punctuation runs), byte-to-unicode mapping, BPE with
``</w>`` word ends, ``<|startoftext|> … <|endoftext|>`` around the ids, truncation to the context
length keeping the end token.

OpenAI's tokenizer first runs ``ftfy.fix_text`` and ``html.unescape``: that step is not
expressible in a ``tokenizers`` normaliser, so CLIP bundles ask the runtime for it
(``config["text_clean"] = "ftfy_html"``, :mod:`edgevl.text.clean`); the JSON's normaliser is NFC +
whitespace + lowercase.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import BPE

from edgevl.errors import CheckpointError

SOT, EOT = "<|startoftext|>", "<|endoftext|>"
CLIP_SPLIT = (
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
)
OPENAI_NUM_MERGES = 49152 - 256 - 2  # what open_clip/OpenAI read from bpe_simple_vocab_16e6


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible map from bytes to printable unicode characters."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) \
        + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(printable, chars, strict=True)}


def clip_vocab_from_merges(merges: list[tuple[str, str]]) -> dict[str, int]:
    """OpenAI's vocabulary order: 256 byte symbols, the same with ``</w>``, merges, SOT, EOT."""
    base = list(bytes_to_unicode().values())
    tokens = base + [c + "</w>" for c in base] + ["".join(m) for m in merges] + [SOT, EOT]
    return {t: i for i, t in enumerate(tokens)}


def _parse_merges(lines: list[str], where: Path) -> list[tuple[str, str]]:
    merges: list[tuple[str, str]] = []
    for i, line in enumerate(lines):
        if not line.strip() or line.startswith("#version"):
            continue
        parts = line.split()
        if len(parts) != 2:
            raise CheckpointError(f"{where}: line {i + 1} is not a BPE merge 'a b': {line[:60]!r}")
        merges.append((parts[0], parts[1]))
    return merges


Vocab = tuple[dict[str, int], list[tuple[str, str]]]


def read_bpe_simple_vocab(path: Path, num_merges: int | None = None) -> Vocab:
    """open_clip's ``bpe_simple_vocab_16e6.txt(.gz)``: a header line, then merges."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path) as f:
                raw = f.read()
        else:
            raw = path.read_bytes()
        lines = raw.decode("utf-8").split("\n")[1:]
    except (OSError, UnicodeDecodeError, EOFError) as e:
        raise CheckpointError(f"{path}: cannot read the BPE merges file ({e})") from e
    merges = _parse_merges(lines, path)
    if num_merges is None:
        num_merges = OPENAI_NUM_MERGES if len(merges) >= OPENAI_NUM_MERGES else len(merges)
    merges = merges[:num_merges]
    return clip_vocab_from_merges(merges), merges


def read_hf_vocab(vocab_json: Path, merges_txt: Path) -> Vocab:
    try:
        vocab = json.loads(vocab_json.read_text(encoding="utf-8"))
        lines = merges_txt.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{vocab_json} / {merges_txt}: cannot read the CLIP vocabulary ({e})") from e
    if not isinstance(vocab, dict):
        raise CheckpointError(f"{vocab_json}: expected a JSON object token → id")
    return {str(k): int(v) for k, v in vocab.items()}, _parse_merges(lines, merges_txt)


def build_clip_tokenizer(
    vocab: dict[str, int], merges: list[tuple[str, str]], context_length: int = 77, pad_id: int = 0
) -> Tokenizer:
    """A ``tokenizers`` object behaving like OpenAI's CLIP tokenizer (see the module docstring)."""
    for special in (SOT, EOT):
        if special not in vocab:
            raise CheckpointError(f"the CLIP vocabulary lacks the special token {special}")
    tok = Tokenizer(BPE(vocab=vocab, merges=merges, continuing_subword_prefix="", end_of_word_suffix="</w>",
                        unk_token=None, fuse_unk=False))
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(CLIP_SPLIT), behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.BPEDecoder(suffix="</w>")
    tok.add_special_tokens([AddedToken(SOT, special=True, normalized=False),
                            AddedToken(EOT, special=True, normalized=False)])
    sot, eot = vocab[SOT], vocab[EOT]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{SOT} $A {EOT}", pair=f"{SOT} $A {EOT} $B {EOT}", special_tokens=[(SOT, sot), (EOT, eot)]
    )
    _set_lengths(tok, context_length, pad_id)
    return tok


def _set_lengths(tok: Tokenizer, context_length: int, pad_id: int) -> None:
    """Truncate to the context length (the end token is kept); batches pad to the longest."""
    tok.enable_truncation(max_length=context_length)
    tok.enable_padding(pad_id=pad_id, pad_token=tok.id_to_token(pad_id) or EOT)


def tokenizer_from_json(path: Path, context_length: int, pad_id: int = 0) -> Tokenizer:
    """An existing ``tokenizer.json`` (HF CLIP), with truncation/padding set to the bundle's."""
    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as e:  # tokenizers raises a plain Exception on bad files
        raise CheckpointError(f"{path}: not a readable tokenizers JSON file ({e})") from e
    vocab = tok.get_vocab()
    if SOT not in vocab or EOT not in vocab:
        raise CheckpointError(f"{path}: tokenizer lacks {SOT}/{EOT}; is it a CLIP tokenizer?")
    if tok.encode("a").ids[:1] != [vocab[SOT]]:
        raise CheckpointError(f"{path}: tokenizer does not add {SOT}; expected a CLIP post-processor")
    _set_lengths(tok, context_length, pad_id)
    return tok


def find_tokenizer_files(folder: Path) -> Path | None:
    """The tokenizer source in ``folder`` (tokenizer.json, vocab.json+merges.txt, bpe_simple_vocab)."""
    for name in ("tokenizer.json", "vocab.json", "bpe_simple_vocab_16e6.txt.gz", "bpe_simple_vocab_16e6.txt"):
        if (folder / name).is_file():
            return folder / name
    return None


def load_clip_tokenizer(source: Path, context_length: int = 77, pad_id: int = 0) -> Tokenizer:
    """Build the tokenizer from a file or a folder holding one of the supported sources."""
    if source.is_dir():
        found = find_tokenizer_files(source)
        if found is None:
            raise CheckpointError(
                f"{source}: no tokenizer files (expected tokenizer.json, vocab.json + merges.txt, or "
                "bpe_simple_vocab_16e6.txt.gz)"
            )
        source = found
    if not source.is_file():
        raise CheckpointError(f"{source}: tokenizer file not found")
    if source.name.endswith(".json") and source.name != "vocab.json":
        return tokenizer_from_json(source, context_length, pad_id)
    if source.name == "vocab.json":
        merges_txt = source.with_name("merges.txt")
        if not merges_txt.is_file():
            raise CheckpointError(f"{source}: vocab.json needs merges.txt beside it")
        vocab, merges = read_hf_vocab(source, merges_txt)
    else:
        vocab, merges = read_bpe_simple_vocab(source)
    return build_clip_tokenizer(vocab, merges, context_length, pad_id)


def encode(tok: Tokenizer, texts: list[str]) -> list[list[int]]:
    """Token ids with start/end tokens, truncated to the context length (no padding)."""
    return [tok.encode(t).ids for t in texts]


def train_clip_bpe(corpus: list[str], num_merges: int = 500) -> Vocab:
    """Learn CLIP-format merges on ``corpus`` (for toy models and tests; no download needed).

    Uses ``tokenizers``' BPE trainer with CLIP's normaliser and pre-tokeniser and the ``</w>``
    word-end suffix; the vocabulary is then laid out in OpenAI's order from the merges.
    """
    from tokenizers.trainers import BpeTrainer

    probe = Tokenizer(BPE(continuing_subword_prefix="", end_of_word_suffix="</w>"))
    probe.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    probe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(CLIP_SPLIT), behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    alphabet = list(bytes_to_unicode().values())
    trainer = BpeTrainer(vocab_size=2 * 256 + num_merges, initial_alphabet=alphabet,
                         end_of_word_suffix="</w>", show_progress=False, min_frequency=1)
    probe.train_from_iterator(corpus, trainer)
    raw = json.loads(probe.to_str())["model"]["merges"]
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else (m[0], m[1]) for m in raw]
    return clip_vocab_from_merges(merges[:num_merges]), merges[:num_merges]  # type: ignore[arg-type]
