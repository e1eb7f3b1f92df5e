#!/usr/bin/env bash
# Benchmark (not a test): does a preview near the end of a long video cost about what one near
# the start does? `esrvid preview --at T` seeks (ffmpeg -ss before -i: jump to the keyframe before
# T, decode from there), so it should, within 1.5x.
#
#   scripts/bench-preview.sh                      # 10-minute 320x180 clip, 5 runs per point
#   RUNS=9 MINUTES=30 scripts/bench-preview.sh
#
# Makes the clip once with the bundled ffmpeg (testsrc2, 25 fps, x264 keyframe every 250 frames,
# AAC audio) in .cache/, builds esrvid, then times the whole CLI (process start, probe, seek,
# decode, model load, upscale, PNG write) at 00:00:05 and 5 s before the end, alternating the two
# so drift in machine speed hits both alike, and prints the median of each. For contrast it also
# times ffmpeg reaching the same end point without seeking (-ss after -i: decode everything), and
# frame-number previews (fN), which resolve the number with a demux-only scan of the whole file.
# Exits 1 if the end/start ratio of the medians exceeds 1.5.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RUNS="${RUNS:-5}"
MINUTES="${MINUTES:-10}"
MODEL="${MODEL:-realesr-animevideov3-x4}"
FFMPEG="$(node -e "process.stdout.write(require('@ffmpeg-installer/ffmpeg').path)")"
CLIP=".cache/bench-preview-${MINUTES}min.mp4"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

mkdir -p .cache
if [[ ! -s "$CLIP" ]]; then
  echo "bench-preview: making a ${MINUTES}-minute 320x180 clip ($CLIP)" >&2
  "$FFMPEG" -hide_banner -loglevel error -y \
    -f lavfi -i "testsrc2=size=320x180:rate=25" -f lavfi -i "sine=frequency=440:sample_rate=48000" \
    -t "$((MINUTES * 60))" -c:v libx264 -preset veryfast -g 250 -pix_fmt yuv420p -c:a aac -b:a 64k "$CLIP.tmp.mp4"
  mv "$CLIP.tmp.mp4" "$CLIP"
fi
npm run build --silent >/dev/null
node dist/cli.js models path "$MODEL" -q >/dev/null # fetched once, outside the timings

LENGTH=$((MINUTES * 60))
START_AT=5
END_AT=$((LENGTH - 5))
LAST_FRAME=$((LENGTH * 25 - 1))

seconds() { # run a command, print its wall time in seconds
  local t0=$EPOCHREALTIME
  "$@" >/dev/null 2>&1
  echo "$EPOCHREALTIME - $t0" | bc -l
}
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { printf "%.3f", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
preview() { node dist/cli.js preview "$CLIP" --at "$1" -m "$MODEL" --threads 2 -o "$OUT/p.png" -y -q; }

preview "$START_AT" >/dev/null # warm the page cache and the model file
starts=(); ends=(); fstarts=(); fends=()
for ((i = 0; i < RUNS; i++)); do
  starts+=("$(seconds preview "$START_AT")")
  ends+=("$(seconds preview "$END_AT")")
  fstarts+=("$(seconds preview f125)")
  fends+=("$(seconds preview "f$((LAST_FRAME - 125))")")
done
noseek="$(seconds "$FFMPEG" -hide_banner -loglevel error -i "$CLIP" -ss "$END_AT" -map 0:v -frames:v 1 -f null -)"

s="$(median "${starts[@]}")"
e="$(median "${ends[@]}")"
ratio="$(echo "$e / $s" | bc -l)"
printf 'clip: %s (%d min, 320x180, 25 fps, keyframe every 10 s), model %s, %d runs each, median wall time of the whole CLI\n' "$CLIP" "$MINUTES" "$MODEL" "$RUNS"
printf '  preview --at %-8s %7.3f s   (runs: %s)\n' "$START_AT" "$s" "${starts[*]}"
printf '  preview --at %-8s %7.3f s   (runs: %s)\n' "$END_AT" "$e" "${ends[*]}"
printf '  end / start           %7.3f    (must be <= 1.5)\n' "$ratio"
printf '  preview --at f125     %7.3f s   (frame numbers scan the file'"'"'s packets first)\n' "$(median "${fstarts[@]}")"
printf '  preview --at f%-7d %7.3f s\n' "$((LAST_FRAME - 125))" "$(median "${fends[@]}")"
printf '  for contrast, ffmpeg decoding from the start to %d s (no seek): %.3f s\n' "$END_AT" "$noseek"
if (( $(echo "$ratio > 1.5" | bc -l) )); then
  echo "bench-preview: a preview near the end costs more than 1.5x one near the start" >&2
  exit 1
fi
