"""Text tokenisation for encoder bundles: a thin layer over ``tokenizers.Tokenizer.from_file``.

The bundle's ``tokenizer.json`` does the splitting, the vocabulary and the special tokens (BERT's
[CLS]/[SEP], CLIP's start/end of text). This module only fixes the batch form: truncation to the
bundle's length limit (``max_length`` for sentence encoders, ``context_length`` for CLIP; the
special tokens are kept), right padding with the bundle's ``pad_id`` to the longest text of the
batch (or to the limit), int64 arrays, and the text cleaning the original tokenizer runs first
(``text_clean``, see :mod:`edgevl.text.clean`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer as _HFTokenizer

from edgevl.bundle import Bundle
from edgevl.errors import BundleError, InputError
from edgevl.manifest import MAX_SIZE
from edgevl.safeio import parse_json, read_text_file
from edgevl.tasks.encoders.sections import TokenizerSpec
from edgevl.text.clean import CLEANERS

Int64Array = npt.NDArray[np.int64]
_INT64_MAX = int(np.iinfo(np.int64).max)
#: a tokenizer.json larger than this is refused before it is read
MAX_TOKENIZER_BYTES = 64 << 20
#: the longest regular expression a tokenizer may carry (the CLIP and GPT-2 splitters are under 200)
MAX_REGEX_CHARS = 2000


def regex_problem(pattern: str) -> str | None:
    """Why a tokenizer regex (run by Oniguruma, a backtracking engine) risks catastrophic
    backtracking, or None. Refused: a backreference, and a repeated group (``*``, ``+``, ``{n,}``,
    ``{n,m}`` with m > 1) whose body holds another repetition or an alternation — the shapes of
    ``(a+)+``, ``(a|aa)*``; the splitters of CLIP, GPT-2 and BERT have no repeated group at all.
    A syntactic bound, not a proof: it errs on the side of refusing."""
    if len(pattern) > MAX_REGEX_CHARS:
        return f"a regular expression of {len(pattern)} characters (at most {MAX_REGEX_CHARS})"
    # stack of open groups: [holds a repetition or an alternation]
    stack: list[bool] = [False]
    last_group_risky: bool | None = None  # the group just closed (a quantifier may follow)
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        closed: bool | None = None
        if c == "\\":
            nxt = pattern[i + 1 : i + 2]
            if (nxt.isdigit() and nxt != "0") or nxt == "k":
                return "a backreference"
            i += 2
        elif c == "[":
            depth, i = 1, i + 1
            while i < n and depth:
                if pattern[i] == "\\":
                    i += 1
                elif pattern[i] == "[":
                    depth += 1
                elif pattern[i] == "]":
                    depth -= 1
                i += 1
        elif c == "(":
            stack.append(False)
            i += 1
        elif c == ")":
            closed = stack.pop() if len(stack) > 1 else False
            i += 1
        elif c == "|":
            stack[-1] = True
            i += 1
        elif c in "*+{?":
            unbounded = c in "*+"
            j = i + 1
            if c == "{":
                end = pattern.find("}", i)
                body = pattern[i + 1 : end] if end > 0 else ""
                parts = body.split(",")
                if end < 0 or not all(p.strip().isdigit() or p.strip() == "" for p in parts):
                    i += 1  # a literal brace
                    last_group_risky = None
                    continue
                unbounded = len(parts) == 2 and (parts[1].strip() == "" or int(parts[1]) > 1)
                j = end + 1
            if unbounded:
                if last_group_risky:
                    return "a repeated group that itself repeats or alternates (catastrophic backtracking)"
                stack[-1] = True
            i = j
            while i < n and pattern[i] in "?+":  # lazy / possessive suffix
                i += 1
            last_group_risky = None
            continue
        else:
            i += 1
        if closed is not None:
            stack[-1] = stack[-1] or closed
        last_group_risky = closed
    return None


def _walk(value: object) -> list[object]:
    out: list[object] = []
    stack = [value]
    while stack:
        v = stack.pop()
        out.append(v)
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return out


def tokenizer_ids(doc: object) -> list[int]:
    """Every token id a ``tokenizers`` JSON document can produce: the model's vocabulary, the added
    tokens and the post-processor's special tokens (what can reach the embedding table)."""
    ids: list[int] = []
    if not isinstance(doc, dict):
        return ids
    model = doc.get("model")
    if isinstance(model, dict):
        vocab = model.get("vocab")
        if isinstance(vocab, dict):
            ids.extend(v for v in vocab.values() if isinstance(v, int))
        elif isinstance(vocab, list):  # Unigram: [token, score] pairs, the id is the position
            ids.append(len(vocab) - 1)
    for t in doc.get("added_tokens") or []:
        if isinstance(t, dict) and isinstance(t.get("id"), int):
            ids.append(t["id"])
    post = doc.get("post_processor")
    for v in _walk(post):
        if isinstance(v, dict):
            for key in ("ids", "sep", "cls"):
                x = v.get(key)
                if isinstance(x, list):
                    ids.extend(i for i in x if isinstance(i, int) and not isinstance(i, bool))
    return ids


def check_tokenizer_doc(doc: object, where: str) -> None:
    """BundleError when a tokenizer document is not an object or carries a risky regex."""
    if not isinstance(doc, dict):
        raise BundleError(f"{where}: expected a JSON object (a `tokenizers` file)")
    for v in _walk(doc):
        if isinstance(v, dict) and isinstance(v.get("Regex"), str):
            problem = regex_problem(v["Regex"])
            if problem:
                raise BundleError(f"{where}: the tokenizer's pattern {v['Regex'][:60]!r} has {problem}; "
                                  "refused")


def _check_text(text: str, index: int) -> None:
    """InputError for a text that is not valid Unicode: lone surrogates are what Python makes of
    invalid UTF-8 bytes on the command line (``surrogateescape``), and tokenizers cannot take them."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        bad = e.object[e.start : e.end]
        try:  # invalid UTF-8 bytes from the command line: show the byte
            what = f"byte {bad.encode('utf-8', 'surrogateescape')!r}"
        except UnicodeEncodeError:  # a lone surrogate from elsewhere
            what = f"lone surrogate {bad!a}"
        raise InputError(f"text {index} is not valid UTF-8 ({what} at position {e.start}); "
                         "give UTF-8 text") from None


@dataclass(frozen=True)
class Encoded:
    """A tokenised batch: ``input_ids``, ``attention_mask`` (1 = token, 0 = padding), ``token_type_ids``."""

    input_ids: Int64Array
    attention_mask: Int64Array
    token_type_ids: Int64Array

    def feeds(self) -> dict[str, Int64Array]:
        return {"input_ids": self.input_ids, "attention_mask": self.attention_mask,
                "token_type_ids": self.token_type_ids}


class Tokenizer:
    """Tokenise batches of strings to fixed-form int64 arrays."""

    def __init__(self, path: Path | str, max_length: int, pad_id: int = 0,
                 pad_to_max: bool = False, clean: str | None = None) -> None:
        p = Path(path)
        if clean is not None and clean not in CLEANERS:
            raise BundleError(f"{p}: unknown text_clean {clean!r}; known: {', '.join(sorted(CLEANERS))}")
        self._clean = CLEANERS[clean] if clean is not None else None
        if not p.is_file():
            raise BundleError(f"{p}: tokenizer file not found (expected a `tokenizers` JSON file)")
        if max_length < 2:
            raise BundleError(f"{p}: max_length {max_length} is too small (needs room for special tokens)")
        if not 0 <= pad_id <= MAX_SIZE:
            raise BundleError(f"{p}: pad_id {str(pad_id)[:24]} is outside 0..{MAX_SIZE}")
        try:  # strict JSON first: duplicate keys, lone surrogates, deep nesting refused
            text = read_text_file(p, "tokenizer file", max_bytes=MAX_TOKENIZER_BYTES)
            doc = parse_json(text, str(p))
        except InputError as e:
            raise BundleError(f"{e} (expected a `tokenizers` JSON file)") from None
        check_tokenizer_doc(doc, str(p))
        ids = tokenizer_ids(doc)
        if any(i < 0 for i in ids):
            raise BundleError(f"{p}: the tokenizer holds a negative token id")
        #: the largest token id the tokenizer can emit (checked against the model's embedding table)
        self.max_id = max([*ids, int(pad_id)])
        try:
            self._tok = _HFTokenizer.from_str(text)
        except Exception as e:  # tokenizers raises a plain Exception for malformed files
            raise BundleError(f"{p}: not a `tokenizers` JSON file ({str(e)[:200]})") from e
        self.path = p
        self.max_length = int(max_length)
        if not 0 <= int(pad_id) <= _INT64_MAX:
            raise BundleError(f"{p}: pad_id {pad_id} is outside 0..{_INT64_MAX} (token ids are int64)")
        self.pad_id = int(pad_id)
        self.pad_to_max = pad_to_max
        self._tok.no_padding()
        # the limit counts the special tokens the post-processor adds
        self._tok.enable_truncation(max_length=self.max_length)

    @classmethod
    def from_bundle(cls, bundle: Bundle, pad_to_max: bool = False) -> Tokenizer:
        spec = bundle.section(TokenizerSpec)
        return cls(bundle.file(spec.tokenizer), spec.max_length, spec.pad_id, pad_to_max, spec.text_clean)

    @property
    def vocab_size(self) -> int:
        return int(self._tok.get_vocab_size(with_added_tokens=True))

    def tokens(self, text: str) -> list[str]:
        """The tokens of one text (after cleaning and truncation), for inspection."""
        return list(self._tok.encode(self._clean(text) if self._clean else text).tokens)

    def __call__(self, texts: Sequence[str]) -> Encoded:
        if isinstance(texts, str):
            texts = [texts]
        if len(texts) == 0:
            raise InputError("no texts to tokenise (expected one or more strings)")
        bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
        if bad:
            raise InputError(f"texts must be strings; items {bad[:5]} are not")
        for i, t in enumerate(texts):
            _check_text(t, i)
        clean = self._clean
        encs = self._tok.encode_batch([clean(t) for t in texts] if clean else list(texts))
        width = self.max_length if self.pad_to_max else max(len(e.ids) for e in encs)
        ids = np.full((len(encs), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(encs), width), dtype=np.int64)
        types = np.zeros((len(encs), width), dtype=np.int64)
        for i, e in enumerate(encs):
            n = len(e.ids)
            ids[i, :n] = e.ids
            mask[i, :n] = 1
            types[i, :n] = e.type_ids
        return Encoded(ids, mask, types)
