"""edgevl.safeio: the one reader and writer of user-named files (issue 24)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edgevl.errors import InputError
from edgevl.safeio import (
    atomic_output,
    check_output,
    csv_cell,
    parse_json,
    read_json_file,
    read_text_file,
    term_safe,
    write_text_atomic,
)


def test_read_text_refuses_fifo_device_dir_and_big(tmp_path: Path) -> None:
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="FIFO"):
        read_text_file(fifo, "labels file")  # returns at once: opened non-blocking
    with pytest.raises(InputError, match="device"):
        read_text_file("/dev/zero", "labels file")
    with pytest.raises(InputError, match="directory"):
        read_text_file(tmp_path, "labels file")
    big = tmp_path / "big.txt"
    big.write_text("x" * 101)
    with pytest.raises(InputError, match="at most 100"):
        read_text_file(big, "labels file", max_bytes=100)
    with pytest.raises(InputError, match="not found"):
        read_text_file(tmp_path / "missing", "labels file")
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8"):
        read_text_file(bad, "labels file")
    ok = tmp_path / "ok.txt"
    ok.write_bytes("\ufeffcafé\n".encode())
    assert read_text_file(ok, "labels file") == "café\n"


@pytest.mark.parametrize("text, match", [
    ('{"a": 1, "a": 2}', "duplicate key 'a'"),
    ('{"w": NaN}', "NaN"),
    ('{"w": -Infinity}', "Infinity"),
    ('"\\ud800"', "surrogate"),
    ('{"\\udc80": 1}', "surrogate"),
    ("[" * 100 + "]" * 100, "nested"),
    ("[" * 100000 + "]" * 100000, "nested"),
    ("{", "not valid JSON"),
])
def test_parse_json_strict(text: str, match: str) -> None:
    with pytest.raises(InputError, match=match):
        parse_json(text, "x.json")


def test_parse_json_accepts_plain_json() -> None:
    assert parse_json('{"a": [1, 2.5, "é", {"b": null}]}', "x") == {"a": [1, 2.5, "é", {"b": None}]}
    assert parse_json("[" * 10 + "]" * 10, "x", max_depth=10) == [[[[[[[[[[]]]]]]]]]]


def test_read_json_file(tmp_path: Path) -> None:
    p = tmp_path / "c.json"
    p.write_text('{"k": 3}')
    assert read_json_file(p, "calibration") == {"k": 3}


def test_check_output_refuses_inputs_dirs_devices(tmp_path: Path) -> None:
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"data")
    link = tmp_path / "link.jpg"
    link.symlink_to(photo)
    with pytest.raises(InputError, match="also an input"):
        check_output(photo, "drawing", [photo])
    with pytest.raises(InputError, match="also an input"):
        check_output(link, "drawing", [tmp_path / "." / "photo.jpg"])
    with pytest.raises(InputError, match="directory"):
        check_output(tmp_path, "drawing")
    with pytest.raises(InputError, match="device"):
        check_output("/dev/full", "drawing")
    with pytest.raises(InputError, match="does not exist"):
        check_output(tmp_path / "nope" / "x.png", "drawing")
    assert check_output(tmp_path / "new.png", "drawing", [photo]) == tmp_path / "new.png"
    assert photo.read_bytes() == b"data"


def test_atomic_output_keeps_old_file_on_error(tmp_path: Path) -> None:
    p = tmp_path / "out.csv"
    p.write_text("old")
    with pytest.raises(RuntimeError), atomic_output(p, "table") as f:
        f.write("new, half")
        raise RuntimeError("boom")
    assert p.read_text() == "old"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["out.csv"]  # no temporary left behind
    write_text_atomic(p, "new", "table")
    assert p.read_text() == "new"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_check_output_read_only_folder(tmp_path: Path) -> None:  # pragma: no cover - CI runs as root
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    with pytest.raises(InputError, match="not writable"):
        check_output(ro / "x.csv", "table")


def test_csv_cell_and_term_safe() -> None:
    assert csv_cell("=HYPERLINK(\"x\")") == "'=HYPERLINK(\"x\")"
    cells = [csv_cell(s) for s in ("+1", "-2", "@a", "\tx", "ok", "a=b")]
    assert cells == ["'+1", "'-2", "'@a", "'\tx", "ok", "a=b"]
    assert csv_cell(-2.5) == -2.5
    assert term_safe("a\x1b[31mred\x07\n\x9b") == "a\\x1b[31mred\\x07\\x0a\\x9b"
    assert term_safe("a\tb", keep_tab=True) == "a\tb"
    assert term_safe("Atletisme GIMNÀSTICA") == "Atletisme GIMNÀSTICA"
