"""Character sets of recognisers exported from torch checkpoints, with where each comes from.

A CTC recogniser's checkpoint holds no characters, only ``num_classes`` output rows; the list is
part of the model's published configuration. Each known list is looked up by the md5 sum its
publisher gives for the weights (EasyOCR's ``md5sum``), then by the file name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgevl.errors import CheckpointError
from edgevl.safeio import read_text_file


@dataclass(frozen=True)
class Charset:
    name: str
    characters: tuple[str, ...]  # class 1.. in order; class 0 is the CTC blank
    source: str
    md5: str | None = None  # of the weights this list belongs to

    @property
    def num_classes(self) -> int:
        return len(self.characters) + 1


#: EasyOCR's english_g2 list: digits, ASCII punctuation, space, euro sign, A-Z, a-z (96 + blank)
ENGLISH_G2 = Charset(
    name="english_g2",
    characters=tuple("0123456789!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ €"
                     "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"),
    source="EasyOCR (github.com/JaidedAI/EasyOCR, Apache-2.0) easyocr/config.py: "
           "recognition_models['gen2']['english_g2']['characters']; blank at index 0 "
           "(CTCLabelConverter puts '[blank]' first)",
    md5="5864788e1821be9e454ec108d61b887d",
)
KNOWN: tuple[Charset, ...] = (ENGLISH_G2,)


def read_charset_file(path: Path) -> Charset:
    """A user's charset: one class per line, in output order, the blank not included."""
    text = read_text_file(path, "charset")
    lines = text[:-1].split("\n") if text.endswith("\n") else text.split("\n")
    if not lines or any(len(c) == 0 for c in lines):
        raise CheckpointError(f"{path}: charset has an empty line (one class per line; a space is a "
                              "line holding one space)")
    if len(set(lines)) != len(lines):
        dup = next(c for c in lines if lines.count(c) > 1)
        raise CheckpointError(f"{path}: charset lists {dup!r} twice")
    return Charset(name=path.stem, characters=tuple(lines), source=f"--charset {path.name}")


def find_charset(weights: Path, md5: str, num_classes: int, given: Path | None = None) -> tuple[Charset, str]:
    """(charset, how it was chosen) for a recogniser with ``num_classes`` outputs."""
    if given is not None:
        cs, how = read_charset_file(given), "given with --charset"
    else:
        by_md5 = [c for c in KNOWN if c.md5 == md5]
        by_name = [c for c in KNOWN if c.name == weights.stem]
        if by_md5:
            cs, how = by_md5[0], "weights md5 matches the publisher's"
        elif by_name:
            cs, how = by_name[0], f"file name {weights.name} (weights differ from the published ones)"
        else:
            raise CheckpointError(
                f"{weights}: no known character list for this recogniser ({num_classes} classes; known: "
                f"{', '.join(c.name for c in KNOWN)}); pass --charset FILE (one class per line, blank "
                "excluded)")
    if cs.num_classes != num_classes:
        raise CheckpointError(f"{weights}: the model outputs {num_classes} classes but the {cs.name} charset "
                              f"gives {cs.num_classes} (blank + {len(cs.characters)})")
    return cs, how
