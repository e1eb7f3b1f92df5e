#!/usr/bin/env bash
# The GPU measurements of the GPU issue, on a host with an NVIDIA GPU, as one JSON document on
# stdout (progress on stderr). Nothing here is needed on a machine without a GPU.
#
#   scripts/gpu-measure.sh > gpu.json
#   NODE=/path/to/node CUDA_PROVIDER_DIR=/carried/provider scripts/gpu-measure.sh > gpu.json
#
# What it does:
#   1. Uses $NODE (default: node on PATH; a carried binary works) and the built dist/ (npm run build,
#      or carry dist/ along with node_modules/ and models/).
#   2. With CUDA_PROVIDER_DIR: copies libonnxruntime_providers_{shared,cuda}.so from there (plain,
#      .xz or .zst) beside libonnxruntime.so.1, for hosts that cannot reach the npm registry
#      (otherwise: esrvid gpu install). `esrvid doctor` then says whether they are the pinned build.
#   3. Runs `esrvid doctor --json`; CUDA/cuDNN libraries it finds off the loader's path (a PyTorch
#      cu130 install's site-packages/nvidia/*/lib, /usr/local/cuda-*) are put on LD_LIBRARY_PATH.
#   4. Pure inference (scripts/gpu-measure.mjs): realesr-general-x4v3 and realesrgan-x4plus at
#      640x360 and 1920x1080 input, fp16 and fp32, batch 1/2/4/8, warm-up excluded, median of RUNS,
#      peak GPU memory per case; frames that do not fit even alone are measured in tiles.
#   5. With ffmpeg working (E2E=1, the default): the whole CLI on generated 640x360 and 1920x1080
#      clips (--device cuda --json): frames/s, batch chosen, per-stage busy time (which stage bounds it).
#
# Knobs (environment): GPU (0), RUNS (5), MODELS, SIZES, PRECISIONS, BATCHES (comma lists),
# MAX_CASE_S (30), TILE (512), E2E (1), E2E_FRAMES (48), E2E_SPECS ("WxH model;WxH model"),
# DEVICE (cuda; webgpu works too, and cpu for a smoke test of this script).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
NODE="${NODE:-node}"
DEVICE="${DEVICE:-cuda}"
GPU="${GPU:-0}"
say() { echo "gpu-measure: $*" >&2; }

"$NODE" -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' || { say "Node >= 20 needed ($NODE is $("$NODE" --version))"; exit 2; }
[[ -f dist/cli.js ]] || { say "dist/ missing: run npm run build here, or carry dist/"; exit 2; }
BIN="$("$NODE" -e 'const p=require("path");console.log(p.join(p.dirname(require.resolve("onnxruntime-node")),"..","bin","napi-v6",process.platform,process.arch))')"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

if [[ -n "${CUDA_PROVIDER_DIR:-}" ]]; then
  for f in libonnxruntime_providers_shared.so libonnxruntime_providers_cuda.so; do
    if [[ -f "$CUDA_PROVIDER_DIR/$f" ]]; then cp "$CUDA_PROVIDER_DIR/$f" "$WORK/$f"
    elif [[ -f "$CUDA_PROVIDER_DIR/$f.xz" ]]; then xz -dc "$CUDA_PROVIDER_DIR/$f.xz" > "$WORK/$f"
    elif [[ -f "$CUDA_PROVIDER_DIR/$f.zst" ]]; then zstd -qdc "$CUDA_PROVIDER_DIR/$f.zst" > "$WORK/$f"
    else say "$f not in $CUDA_PROVIDER_DIR"; exit 2; fi
    chmod 755 "$WORK/$f"
    mv "$WORK/$f" "$BIN/$f"
  done
  say "provider files placed in $BIN"
fi

"$NODE" dist/cli.js doctor --json > "$WORK/doctor.json"
EXTRA="$("$NODE" -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
console.log([...new Set(r.cuda.libraries.map((l) => l.offPath).filter(Boolean))].join(":"));' "$WORK/doctor.json")"
if [[ -n "$EXTRA" ]]; then
  export LD_LIBRARY_PATH="$EXTRA${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  say "added to LD_LIBRARY_PATH: $EXTRA"
  "$NODE" dist/cli.js doctor --json > "$WORK/doctor.json"
fi
"$NODE" dist/cli.js doctor >&2 || true

"$NODE" scripts/gpu-measure.mjs --device "$DEVICE" --gpu "$GPU" --runs "${RUNS:-5}" --max-case-s "${MAX_CASE_S:-30}" --tile "${TILE:-512}" \
  ${MODELS:+--models "$MODELS"} ${SIZES:+--sizes "$SIZES"} ${PRECISIONS:+--precisions "$PRECISIONS"} ${BATCHES:+--batches "$BATCHES"} \
  > "$WORK/inference.json"

echo '[]' > "$WORK/e2e.json"
if [[ "${E2E:-1}" == 1 ]]; then
  FFMPEG="$("$NODE" -e 'try{console.log(require("@ffmpeg-installer/ffmpeg").path)}catch{console.log(process.env.ESRVID_FFMPEG||"ffmpeg")}')"
  if "$FFMPEG" -hide_banner -version >/dev/null 2>&1; then
    runs=()
    IFS=';' read -r -a specs <<< "${E2E_SPECS:-640x360 realesrgan-x4plus;1920x1080 realesr-general-x4v3;1920x1080 realesrgan-x4plus}"
    gpuarg=(); [[ "$DEVICE" == cuda ]] && gpuarg=(--gpu "$GPU")
    for spec in "${specs[@]}"; do
      read -r size model <<< "$spec"
      clip="$WORK/clip-$size.mp4"
      [[ -f "$clip" ]] || "$FFMPEG" -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=$size:rate=24" -frames:v "${E2E_FRAMES:-48}" -c:v libx264 -pix_fmt yuv420p "$clip"
      say "end to end: $model $size"
      "$NODE" dist/cli.js "$clip" "$WORK/out-$size-$model.mp4" -y --json --device "$DEVICE" "${gpuarg[@]}" --model "$model" > "$WORK/e2e-$size-$model.ndjson" 2> "$WORK/e2e.err" || say "failed: $(tail -1 "$WORK/e2e.err")"
      runs+=("$WORK/e2e-$size-$model.ndjson")
    done
    "$NODE" -e '
const fs = require("fs");
const out = process.argv.slice(1).map((f) => {
  const ev = fs.readFileSync(f, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
  const start = ev.find((e) => e.type === "start"), done = ev.find((e) => e.type === "done"), error = ev.find((e) => e.type === "error");
  if (!done) return { file: f, error: error?.message ?? "no done event", start };
  const busy = Object.fromEntries(Object.entries(done.stageMs).map(([k, v]) => [k, v / done.elapsedMs]));
  return { model: start.model, inputSize: start.inputSize, device: start.device, precision: start.precision, batch: start.batch, tile: start.tile,
    frames: done.frames, elapsedMs: done.elapsedMs, fps: done.frames / (done.elapsedMs / 1000), stageMs: done.stageMs, busyShare: busy,
    bound: Object.entries(busy).sort((a, b) => b[1] - a[1])[0][0], peakRssBytes: done.peakRssBytes, warnings: ev.filter((e) => e.type === "warning").map((e) => e.message) };
});
fs.writeFileSync(process.argv[1].replace(/[^/]*$/, "e2e.json"), JSON.stringify(out));' "${runs[@]}"
  else
    say "no working ffmpeg: end-to-end runs skipped"
  fi
fi

"$NODE" -e '
const fs = require("fs");
const [doctor, inference, e2e] = process.argv.slice(1).map((f) => JSON.parse(fs.readFileSync(f, "utf8")));
process.stdout.write(JSON.stringify({ doctor, inference, endToEnd: e2e }, null, 2) + "\n");' "$WORK/doctor.json" "$WORK/inference.json" "$WORK/e2e.json"
