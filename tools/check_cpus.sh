#!/usr/bin/env bash
# Same decisions on every processor, proven under emulation (run as root on x86-64 Debian).
#
#   tools/check_cpus.sh avx2  [OUT]   # x86-64 with AVX2 only (qemu-x86_64 -cpu max: no AVX-512/VNNI)
#   tools/check_cpus.sh arm64 [OUT]   # Raspberry Pi OS userland: Debian bookworm arm64 root
#
# avx2: `edge model verify` and every model file's decisions on MIT-BIH 202 and 208 under
# `qemu-x86_64-static -cpu max`, compared with the same files and with fp32 run natively
# (tools/cpu_decisions.py compare). About 5 minutes on 2 cores.
#
# arm64: builds (once) a bookworm arm64 root with debootstrap, installs the project there with
# the README's own install command, then runs `edge model verify`, `edge demo --fast` and a
# replay of mitdb-ds1/208, and compares decisions, episodes and beat labels with the native
# x86 run. About 20 minutes on 2 cores the first time (root: 4 min, install: 8-10 min).
#
# Needs (Debian packages): qemu-user-static, and for arm64 binfmt-support and debootstrap.
# The recordings come from EDGE_DATA_DIR (default ../shared/data). Results go to OUT
# (default out/cpus), with a summary.json; exit 1 when a check fails.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
what=${1:?usage: tools/check_cpus.sh avx2|arm64 [OUT]}
OUT=$(mkdir -p "${2:-out/cpus}" && cd "${2:-out/cpus}" && pwd)
DATA=$(cd "${EDGE_DATA_DIR:-../shared/data}" && pwd)
PY=${PYTHON:-$REPO/.venv/bin/python}
RECORDS=("$DATA/mitdb-signal-only/202" "$DATA/mitdb/208")
log() { echo "[check_cpus $what] $*"; }

native_decisions() {
    [ -s "$OUT/native.json" ] || "$PY" tools/cpu_decisions.py run "$OUT/native.json" "${RECORDS[@]}"
}

case "$what" in
avx2)
    command -v qemu-x86_64-static >/dev/null || { echo "needs qemu-x86_64-static (apt install qemu-user-static)" >&2; exit 2; }
    EMU=(qemu-x86_64-static -cpu max)
    native_decisions
    log "edge model verify under ${EMU[*]}"
    "${EMU[@]}" "$PY" -m edge model verify --json > "$OUT/avx2-verify.json" || {
        cat "$OUT/avx2-verify.json"; echo "edge model verify failed on the emulated AVX2 CPU" >&2; exit 1; }
    "$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); [print(f\"  {f['status']:6} {f['file']:24} {f.get('golden', {}).get('agreement', '')}\") for f in d['files']]" "$OUT/avx2-verify.json"
    log "decisions on MIT-BIH 202 and 208 under emulation (a few minutes)"
    "${EMU[@]}" "$PY" tools/cpu_decisions.py run "$OUT/avx2.json" "${RECORDS[@]}" \
        --cpu "x86-64 AVX2 without AVX-512/VNNI (qemu-x86_64 -cpu max)"
    "$PY" tools/cpu_decisions.py compare "$OUT/native.json" "$OUT/avx2.json" | tee "$OUT/avx2-compare.txt"
    ;;
arm64)
    ROOT=${ARM64_ROOT:-$REPO/out/arm64-root}
    [ -d /proc/sys/fs/binfmt_misc ] && ! mountpoint -q /proc/sys/fs/binfmt_misc && \
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
        grep -v '^#' /usr/lib/binfmt.d/qemu-aarch64.conf > /proc/sys/fs/binfmt_misc/register
    fi
    if [ ! -x "$ROOT/usr/bin/python3" ]; then
        log "debootstrap bookworm arm64 into $ROOT"
        debootstrap --arch=arm64 --variant=minbase \
            --include=python3,python3-venv,python3-pip,ca-certificates bookworm "$ROOT" >"$OUT/debootstrap.log"
    fi
    cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"
    cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
    mkdir -p "$ROOT/proc" "$ROOT/data" "$ROOT/opt/vitals-edge" "$ROOT/dev/pts"
    mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"   # not /sys: cpuinfo segfaults under qemu
    mountpoint -q "$ROOT/dev/pts" || mount --bind /dev/pts "$ROOT/dev/pts"   # the demo's serial pty
    mountpoint -q "$ROOT/data" || mount --bind -o ro "$DATA" "$ROOT/data"
    trap 'umount "$ROOT/data" "$ROOT/dev/pts" "$ROOT/proc" 2>/dev/null || true' EXIT
    git ls-files -z | tar --null -T - -cf - | tar -C "$ROOT/opt/vitals-edge" -xf -
    IN=(chroot "$ROOT" /usr/bin/env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8
        EDGE_DATA_DIR=/data /bin/bash -c)
    "${IN[@]}" 'python3 --version; uname -m' | tee "$OUT/arm64-python.txt"
    if [ ! -x "$ROOT/opt/vitals-edge/.venv/bin/edge" ]; then
        log "README install command inside the arm64 root (emulated: several minutes)"
        start=$(date +%s)
        "${IN[@]}" 'cd /opt/vitals-edge && python3 -m venv .venv && .venv/bin/pip install -q -e ".[dev]"' \
            > "$OUT/arm64-install.log" 2>&1
        echo "$(( $(date +%s) - start ))" > "$OUT/arm64-install-seconds.txt"
    else
        "${IN[@]}" 'cd /opt/vitals-edge && .venv/bin/pip install -q --no-deps -e .' > "$OUT/arm64-install.log" 2>&1
    fi
    "${IN[@]}" 'du -sm /opt/vitals-edge/.venv | cut -f1' > "$OUT/arm64-venv-mb.txt"
    log "edge model verify (arm64)"
    "${IN[@]}" 'cd /opt/vitals-edge && .venv/bin/edge model verify --json' > "$OUT/arm64-verify.json" || {
        cat "$OUT/arm64-verify.json"; echo "edge model verify failed on arm64" >&2; exit 1; }
    log "edge demo --fast (arm64)"
    "${IN[@]}" 'cd /tmp && /opt/vitals-edge/.venv/bin/edge demo --fast --json' > "$OUT/arm64-demo.json"
    log "decisions on MIT-BIH 202 and 208 (arm64)"
    "${IN[@]}" 'cd /opt/vitals-edge && .venv/bin/python tools/cpu_decisions.py run /tmp/arm64.json /data/mitdb-signal-only/202 /data/mitdb/208 --cpu "arm64 (qemu-aarch64, Debian bookworm)"'
    cp "$ROOT/tmp/arm64.json" "$OUT/arm64.json"
    native_decisions
    "$PY" tools/cpu_decisions.py compare "$OUT/native.json" "$OUT/arm64.json" | tee "$OUT/arm64-compare.txt"
    log "replay of mitdb-ds1/208 (arm64 and native)"
    "${IN[@]}" 'cd /tmp && /opt/vitals-edge/.venv/bin/edge replay /data/mitdb-ds1/208 --json --beats /tmp/arm64-beats.csv' > "$OUT/arm64-replay.json"
    cp "$ROOT/tmp/arm64-beats.csv" "$OUT/arm64-beats.csv"
    "$PY" -m edge replay "$DATA/mitdb-ds1/208" --json --beats "$OUT/native-beats.csv" > "$OUT/native-replay.json"
    "$PY" tools/compare_replays.py "$OUT/native-replay.json" "$OUT/native-beats.csv" \
        "$OUT/arm64-replay.json" "$OUT/arm64-beats.csv" | tee "$OUT/arm64-replay-compare.txt"
    ;;
*)
    echo "usage: tools/check_cpus.sh avx2|arm64 [OUT]" >&2; exit 2 ;;
esac
log "passed"
