#!/usr/bin/env bash
# Makes samples/chelsea.mp4, the clip the README's first command upscales: a slow pan over a real
# photograph (test/fixtures/photos/large-chelsea.png, CC0, see SOURCES.md there) with a tone as
# its audio track and one subtitle, so a first run shows picture, sound and subtitles carried over.
# Uses the ffmpeg installed with esrvid (npm ci).
set -euo pipefail
cd "$(dirname "$0")/.."
ff=$(node -e "console.log(require('@ffmpeg-installer/ffmpeg').path)")
srt=$(mktemp --suffix=.srt)
trap 'rm -f "$srt"' EXIT
printf '1\n00:00:00,000 --> 00:00:01,500\nChelsea the cat, upscaled by esrvid\n' >"$srt"
"$ff" -hide_banner -loglevel error -y \
  -loop 1 -framerate 24 -i test/fixtures/photos/large-chelsea.png \
  -f lavfi -i "sine=frequency=330:sample_rate=48000" \
  -i "$srt" \
  -filter_complex "[0:v]crop=160:90:x='min(160,t*60)':y=40,format=yuv420p[v]" \
  -map '[v]' -map 1:a -map 2:s -t 2 \
  -c:v libx264 -preset slow -crf 16 -colorspace bt709 -color_primaries bt709 -color_trc bt709 -color_range tv \
  -c:a aac -b:a 96k -c:s mov_text -metadata:s:s:0 language=eng -metadata title="esrvid sample" \
  -movflags +faststart samples/chelsea.mp4
echo "wrote samples/chelsea.mp4"
