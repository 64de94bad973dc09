"""The TensorRT plugin library's host logic, checked without a GPU or libnvinfer.

kernels/tools/plugin_selftest.cpp is built against the public TensorRT 10.3 headers (../shared/third_party or
$EDGEVL_TRT_INCLUDE; these tests skip where they are missing, as on a fresh clone) and run, once per TensorRT
API the library supports (10.x: both flavours; 8.6 / 8.5: IPluginV2DynamicExt only): creator lists and
versions, field parsing, serialisation round trips, type/format rules, the parameters handed to the kernels,
the error guards under failed allocations and the errors' way to TensorRT's logger. The mutation tests show
the self-test and the compile fail when the plugin code is wrong.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import NamedTuple

import pytest
from conftest import load_script
from edgevl_export.trt.rewrite import PLUGIN_OP, PLUGIN_VERSION

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "kernels" / "tools" / "compile_check.py"


cc = load_script(TOOL, "compile_check_plugin")
CUDA_HOME = cc.cuda_home()
pytestmark = pytest.mark.skipif(
    not cc.TRT_INCLUDE.is_dir() or shutil.which("g++") is None or CUDA_HOME is None,
    reason="needs the TensorRT 10.3 headers (../shared/third_party or EDGEVL_TRT_INCLUDE), g++, CUDA headers",
)
VARIANTS = {v.name: v for v in cc.PLUGIN_VARIANTS}
PLUGINS = ["EdgevlAttention", "EdgevlAttentionInt8", "EdgevlQuantizeRows", "EdgevlLayerNormQuantize",
           "EdgevlDequantizeRows"]


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


def test_the_variants_are_the_supported_tensorrt_apis() -> None:
    assert {n: (v.v3, v.logger_finder) for n, v in VARIANTS.items()} == {
        "trt10": (True, True), "trt8.6": (False, True), "trt8.5": (False, False)}
    assert cc.expected_exports(VARIANTS["trt8.5"]) == {
        "getPluginCreators": True, "getCreators": False, "setLoggerFinder": False}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_selftest_passes_and_both_flavours_register_distinct_versions(variant: str, tmp_path: Path) -> None:
    assert CUDA_HOME is not None
    v = VARIANTS[variant]
    ok, log = cc.run_selftest(tmp_path, CUDA_HOME / "include", variant, v.defs)
    assert ok, log
    assert "plugin self-test: passed (0 failed)" in log
    listed = cc.listed_creators(log)
    # every TensorRT: the IPluginV2DynamicExt creators, version 1
    assert listed["getPluginCreators"] == [(name, "1") for name in PLUGINS]
    if v.v3:  # TensorRT 10: both flavours of every plugin from the one library, V2 "1" and V3 "2"
        flavours = (("1", "V2"), ("2", "V3"))
        assert listed["getCreators"] == [(name, ver, fl) for name in PLUGINS for ver, fl in flavours]
    else:
        assert listed["getCreators"] == []
    assert listed == cc.expected_creators(v)
    # the version the ONNX export writes on its EdgevlAttention nodes is registered by the flavour every
    # TensorRT has, so the exported graph parses on 8.5, 8.6 and 10.x alike
    assert (PLUGIN_OP, PLUGIN_VERSION) in listed["getPluginCreators"]


def test_expected_creators_refuse_one_version_for_both_flavours() -> None:
    """compile_check compares the self-test's lists with expected_creators: a library registering its V3
    creators as version 1 (or leaving them out) does not match."""
    same = "\n".join(f"getCreators: {n} 1 {f}" for n in PLUGINS for f in ("V2", "V3"))
    v2 = "\n".join(f"getPluginCreators: {n} 1" for n in PLUGINS)
    assert cc.listed_creators(f"{v2}\n{same}\n") != cc.expected_creators(VARIANTS["trt10"])
    assert cc.listed_creators(v2) != cc.expected_creators(VARIANTS["trt10"])
    assert cc.listed_creators(v2) == cc.expected_creators(VARIANTS["trt8.5"])


class Mutation(NamedTuple):
    file: str     # under kernels/plugin
    old: str      # found exactly once
    new: str
    failure: str  # the self-test's "FAIL <failure>" line


_V2_NAMESPACE = ('  void destroy() noexcept override { delete this; }\n'
                 '  void setPluginNamespace(nvinfer1::AsciiChar const* ns) noexcept override {\n')
MUTATIONS = {
    # the int8 plugin accepting fp16 q/k/v
    "type rule": Mutation("attention/attention_core.cpp", "return d.type == nvinfer1::DataType::kINT8;",
                          "return d.type == nvinfer1::DataType::kHALF;", "V3 int8 accepts int8 q/k/v"),
    # deserialise reading v_scale's bytes into k_scale
    "serialisation": Mutation("attention/attention_core.h", "std::memcpy(&k_scale, p + 16",
                              "std::memcpy(&k_scale, p + 20",
                              "V2 int8 serialise -> deserialise -> serialise"),
    # a Q/DQ scale that is not passed to the kernel
    "enqueue": Mutation("attention/attention_core.cpp", "p.v_scale = attrs.v_scale;", "p.v_scale = 1.F;",
                        "V3 int8 enqueue passes scales"),
    # an absent scale accepted (0 would make every output 0)
    "required scale": Mutation("attention/attention_core.h", "ok(k_scale) && ok(v_scale);", "ok(k_scale);",
                               "missing v_scale is rejected"),
    # LayerNorm + quantise dropping the eps field
    "eps": Mutation("rowops/row_ops_core.cpp", "attrs.eps, q, cols, scale, stream);",
                    "1e-5F, q, cols, scale, stream);", "LN+quantise enqueue: fp32 kernel"),
    # quantise taking every input as fp32
    "quantise dtype": Mutation("rowops/row_ops_core.cpp", "? evk_quantize_rows_f16(inputs[0],",
                               "? evk_quantize_rows_f32(static_cast<float const*>(inputs[0]),",
                               "quantise enqueue: fp16 kernel"),
    # dequantise ignoring out_fp16 in its type rule
    "dequantise type": Mutation("rowops/row_ops_core.cpp", "d.type == (attrs.out_fp16 != 0 ?",
                                "d.type == (attrs.out_fp16 == 2 ?",
                                "dequantise accepts int8 q, fp32 scale, fp16 out"),
    # both flavours under one version: TensorRT's registry would refuse the second creator
    "same version": Mutation("common/trt_api.h", 'kVersionV3 = "2";', 'kVersionV3 = "1";',
                             "each plugin's V2 and V3 flavours register distinct versions"),
    # the IPluginV2DynamicExt creators left out of getCreators (TensorRT 10's loadLibrary would miss them)
    "V2 not in getCreators": Mutation("api/plugin_library.cpp", "nbCreators = 2 * kNbPlugins;",
                                      "nbCreators = kNbPlugins;",
                                      "getCreators lists both flavours of the 5 plugins (10 creators)"),
    # clone without its guard: the std::bad_alloc of `new` or of the namespace copy leaves a noexcept method
    "unguarded clone": Mutation(
        "common/plugin_v2.h",
        'return guard(Kind::kName, "clone", static_cast<nvinfer1::IPluginV2DynamicExt*>(nullptr),\n'
        "                 [&] { return new PluginV2(*this); });",
        "return new PluginV2(*this);",
        "guards: IPluginV2DynamicExt: an exception escaped a noexcept entry point"),
    # the plugin's setPluginNamespace without its guard (the std::string assignment throws)
    "unguarded setPluginNamespace": Mutation(
        "common/plugin_v2.h",
        _V2_NAMESPACE + '    guard(Kind::kName, "setPluginNamespace", [&] { ns_ = ns == nullptr ? "" : ns; '
                        '});\n',
        _V2_NAMESPACE + '    ns_ = ns == nullptr ? "" : ns;\n',
        "guards: IPluginV2DynamicExt: an exception escaped a noexcept entry point"),
    # a guard that swallows the exception without a word
    "silent guard": Mutation(
        "common/guard.h",
        "    std::forward<F>(body)();\n  } catch (std::exception const& e) {\n"
        "    log_error(plugin, method, e.what());",
        "    std::forward<F>(body)();\n  } catch (std::exception const& e) {\n    (void)e;",
        "EdgevlAttention V2 plugin setPluginNamespace catches and logs a failed allocation"),
    # errors written to stderr although TensorRT handed the library its logger
    "logger ignored": Mutation(
        "common/logging.cpp", "if (nvinfer1::ILogger* logger = plugin_logger(); logger != nullptr) {",
        "if (nvinfer1::ILogger* logger = nullptr; logger != nullptr) {",
        "errors reach TensorRT's logger through the logger finder"),
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_selftest_fails_on_a_broken_plugin(name: str, tmp_path: Path) -> None:
    assert CUDA_HOME is not None
    file, old, new, failure = MUTATIONS[name]
    tree = _copy_tree(tmp_path)
    _mutate(tree / "plugin" / file, old, new)
    ok, log = cc.run_selftest(tmp_path, CUDA_HOME / "include", "trt10", [],
                              source=tree / "tools" / cc.SELFTEST.name)
    assert not ok
    assert f"FAIL {failure}" in log, log


# a pure virtual method of each flavour and a line of its override (V3's getWorkspaceSize has a default)
OVERRIDES = {"plugin_v2.h": ("  size_t getWorkspaceSize(", "return 0;"),
             "plugin_v3.h": ("  int32_t onShapeChange(", 'set_io("onShapeChange"')}


@pytest.mark.parametrize("flavour", sorted(OVERRIDES))
def test_a_missing_override_fails_the_compile(flavour: str, tmp_path: Path) -> None:
    assert CUDA_HOME is not None
    tree = _copy_tree(tmp_path)
    src = tree / "plugin" / "attention" / "attention_plugin.cpp"
    cmd = ["g++", *cc.plugin_flags(CUDA_HOME / "include", tree / "plugin"), "-fsyntax-only", str(src)]
    control = subprocess.run(cmd, capture_output=True, text=True)
    assert control.returncode == 0, control.stderr[-2000:]
    # drop the override from the flavour's template: its explicit instantiation must fail
    header = tree / "plugin" / "common" / flavour
    text = header.read_text()
    anchor, body_line = OVERRIDES[flavour]
    start = text.index(anchor)
    end = text.index("  }\n", start) + 4
    assert body_line in text[start:end]
    header.write_text(text[:start] + text[end:])
    broken = subprocess.run(cmd, capture_output=True, text=True)
    assert broken.returncode != 0
    assert "abstract" in broken.stderr
