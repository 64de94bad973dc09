"""The TensorRT plugin library's host logic, checked without a GPU or libnvinfer.

kernels/tools/plugin_selftest.cpp is built against the public TensorRT 10.3 headers (../shared/third_party;
these tests skip where that folder is missing, as on a fresh clone) and run: creator lists of both flavours,
field parsing, serialisation round trips, type/format rules and the parameters handed to the kernels. The
mutation tests show the self-test and the compile both fail when the plugin code is wrong.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import load_script

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "kernels" / "tools" / "compile_check.py"


cc = load_script(TOOL, "compile_check_plugin")
CUDA_HOME = cc.cuda_home()
pytestmark = pytest.mark.skipif(
    not cc.TRT_INCLUDE.is_dir() or shutil.which("g++") is None or CUDA_HOME is None,
    reason="needs ../shared/third_party/tensorrt-10.3/include, g++ and the CUDA headers",
)
VARIANTS = {"v3": [], "legacy": ["-DEDGEVL_TRT_LEGACY_PLUGIN=1"]}


def _copy_tree(tmp: Path) -> Path:
    """kernels/plugin and the self-test under tmp/kernels, for mutating."""
    dst = tmp / "kernels"
    shutil.copytree(ROOT / "kernels" / "plugin", dst / "plugin")
    (dst / "tools").mkdir()
    shutil.copy(cc.SELFTEST, dst / "tools" / cc.SELFTEST.name)
    return dst


def _mutate(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"mutation anchor not found once in {path.name}: {old!r}"
    path.write_text(text.replace(old, new))


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_selftest_passes_and_both_plugins_are_registered(variant: str, tmp_path: Path) -> None:
    assert CUDA_HOME is not None
    ok, log = cc.run_selftest(tmp_path, CUDA_HOME / "include", variant, VARIANTS[variant])
    assert ok, log
    assert re.findall(r"^creator (\S+) v1$", log, re.M) == [
        "EdgevlAttention", "EdgevlAttentionInt8", "EdgevlQuantizeRows", "EdgevlLayerNormQuantize",
        "EdgevlDequantizeRows"]
    assert "plugin self-test: passed (0 failed)" in log


MUTATIONS = {
    # the int8 plugin accepting fp16 q/k/v
    "type rule": ("attention_core.cpp", "return d.type == nvinfer1::DataType::kINT8;",
                  "return d.type == nvinfer1::DataType::kHALF;", "V3 int8 accepts int8 q/k/v"),
    # deserialise reading v_scale's bytes into k_scale
    "serialisation": ("attention_core.h", "std::memcpy(&k_scale, p + 16", "std::memcpy(&k_scale, p + 20",
                      "V2 int8 serialise -> deserialise -> serialise"),
    # a Q/DQ scale that is not passed to the kernel
    "enqueue": ("attention_core.cpp", "p.v_scale = attrs.v_scale;", "p.v_scale = 1.F;",
                "V3 int8 enqueue passes scales"),
    # an absent scale accepted (0 would make every output 0)
    "required scale": ("attention_core.h", "ok(k_scale) && ok(v_scale);", "ok(k_scale);",
                       "missing v_scale is rejected"),
    # LayerNorm + quantise dropping the eps field
    "eps": ("row_ops_core.cpp", "attrs.eps, q, cols, scale, stream);", "1e-5F, q, cols, scale, stream);",
            "LN+quantise enqueue: fp32 kernel"),
    # quantise taking every input as fp32
    "quantise dtype": ("row_ops_core.cpp", "? evk_quantize_rows_f16(inputs[0],",
                       "? evk_quantize_rows_f32(static_cast<float const*>(inputs[0]),",
                       "quantise enqueue: fp16 kernel"),
    # dequantise ignoring out_fp16 in its type rule
    "dequantise type": ("row_ops_core.cpp", "d.type == (attrs.out_fp16 != 0 ?",
                        "d.type == (attrs.out_fp16 == 2 ?",
                        "dequantise accepts int8 q, fp32 scale, fp16 out"),
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_selftest_fails_on_a_broken_plugin(name: str, tmp_path: Path) -> None:
    assert CUDA_HOME is not None
    file, old, new, failure = MUTATIONS[name]
    tree = _copy_tree(tmp_path)
    _mutate(tree / "plugin" / file, old, new)
    ok, log = cc.run_selftest(tmp_path, CUDA_HOME / "include", "v3", [],
                              source=tree / "tools" / cc.SELFTEST.name)
    assert not ok
    assert f"FAIL {failure}" in log, log


def test_a_missing_override_fails_the_compile(tmp_path: Path) -> None:
    assert CUDA_HOME is not None
    tree = _copy_tree(tmp_path)
    src = tree / "plugin" / "attention_plugin.cpp"
    cmd = ["g++", *cc.plugin_flags(CUDA_HOME / "include", tree / "plugin"), "-fsyntax-only", str(src)]
    control = subprocess.run(cmd, capture_output=True, text=True)
    assert control.returncode == 0, control.stderr[-2000:]
    # drop the IPluginV2DynamicExt getWorkspaceSize override
    text = src.read_text()
    start = text.index("  size_t getWorkspaceSize(PluginTensorDesc const*")
    end = text.index("  }\n", start) + 4
    assert "return 0;" in text[start:end]
    src.write_text(text[:start] + text[end:])
    broken = subprocess.run(cmd, capture_output=True, text=True)
    assert broken.returncode != 0
    assert "abstract" in broken.stderr
