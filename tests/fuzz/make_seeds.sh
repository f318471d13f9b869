#!/usr/bin/env bash
# Writes the seed corpus of the fuzz targets (tests/fuzz/corpus/, committed; a few hundred KB):
# small valid inputs of every kind from ntc itself, so that fuzzing starts deep in each reader.
#   usage: tests/fuzz/make_seeds.sh [streams]   (from the repository root, after `make`)
#   `streams` rewrites only the streams of the shipped model (after it changes: scripts/campaign.sh
#   ship does this), leaving the other seeds as they are.
set -euo pipefail
only_streams=${1:-}
ntc=build/ntc
c=tests/fuzz/corpus
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [[ $only_streams == streams ]]; then
  rm -rf "$c/decompress" "$c/container"
  mkdir -p "$c/decompress" "$c/container"
else
  rm -rf "$c"
  mkdir -p "$c"/{container,decompress,rans,json,image,model,checkpoint,overfit}
fi

# Images: small crops of the sample in every format stb reads that ntc may meet
# (tests/fuzz/image_seeds.cc, built here with stb_image_write).
g++ -std=c++20 -O1 -I/usr/include/stb -o "$tmp/image_seeds" tests/fuzz/image_seeds.cc -lstb
if [[ $only_streams != streams ]]; then "$tmp/image_seeds" data/samples/seeding.png 300 200 24 20 "$c/image"; fi

# Streams of the shipped model: small images at three qualities (the decoder caps fuzz inputs at
# 128x128 pixels), and the golden streams for the container reader.
for size in "16 16" "33 17" "64 48"; do
  set -- $size
  mkdir -p "$tmp/crop"
  "$tmp/image_seeds" data/samples/seeding.png 400 300 "$1" "$2" "$tmp/crop"
  for q in 5 50 95; do "$ntc" --threads 1 encode "$tmp/crop/rgb.ppm" -o "$c/decompress/${1}x${2}_q$q.ntc" --quality $q; done
done
cp tests/golden/q20.ntc tests/golden/q80.ntc "$c/container/"
cp "$c"/decompress/16x16_q50.ntc "$c/container/"
if [[ $only_streams == streams ]]; then
  du -sh "$c"
  exit 0
fi

# Overfitted streams (nn/overfit.h; they carry their own decoder): small crops after a few
# iterations (seeds for the format, not for quality), one of them grey.
mkdir -p "$c/overfit"
for size in "16 16" "33 17"; do
  set -- $size
  "$tmp/image_seeds" data/samples/seeding.png 400 300 "$1" "$2" "$tmp/crop"
  "$ntc" --threads 1 encode "$tmp/crop/rgb.ppm" -o "$c/overfit/${1}x${2}.ntco" --iters 30 --quiet
done
"$ntc" --threads 1 encode "$tmp/crop/rgb.ppm" -o "$c/overfit/learned_33x17.ntco" --iters 30 --overfit-upsample learned --quiet
printf 'P5\n12 9\n255\n' >"$tmp/grey.pgm" && head -c 108 /dev/zero | tr '\0' '\200' >>"$tmp/grey.pgm"
"$ntc" --threads 1 encode "$tmp/grey.pgm" -o "$c/overfit/grey_12x9.ntco" --iters 30 --quiet

# rANS: byte 0 even = decode a stream, odd = round-trip values; byte 1 = table pattern.
printf '\x00\x03' >"$c/rans/decode_empty"
head -c 64 "$c/decompress/33x17_q50.ntc" | tail -c 40 | { printf '\x02\x05'; cat; } >"$c/rans/decode_bytes"
{ printf '\x01\x00'; printf '\x01\x00\x05\x00\xff\xff\x40\x00\x00\x80\x07\x00'; } >"$c/rans/roundtrip"

# JSON: an RD curve in ntc's own format and edge cases.
cat >"$c/json/rd.json" <<'J'
{"name": "ntc", "bpp": [0.25, 0.5, 1.0], "psnr": [27.1, 30.2, 33.9], "nested": {"a": [true, false, null], "s": "\u00e9\n"}}
J
printf '[1e308, -0.0, 1E-400, "x\\"y", {}]' >"$c/json/numbers.json"
printf '[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]' >"$c/json/deep.json"

# Model files and checkpoints of two tiny configs (a factorized prior; a variable-rate hyperprior
# with log gains), trained for 2 steps on the sample image.
mkdir -p "$tmp/data"
"$tmp/image_seeds" data/samples/seeding.png 200 100 96 64 "$tmp/crop" && cp "$tmp/crop/rgb.png" "$tmp/data/a.png"
common='analysis = cnn
analysis.channels_base = 4
synthesis = two_layer
synthesis.channels = 3
synthesis.kernels = 5,3
synthesis.strides = 8,2
eb.filters = 3'
printf 'name = fuzz_fact\nprior = factorized\nlatent_channels = 3\n%s\n' "$common" >"$tmp/fact.cfg"
printf 'name = fuzz_hyper\nprior = hyperprior\nlatent_channels = 4\nhyper_channels = 2\n%s\n%s\n' "$common" \
  'synthesis.activation = igdn
hyper_analysis = hyper
hyper_synthesis = hyper
hyper_synthesis.channels = 3,4
scale_mode = tf_index
rate.gains = log' >"$tmp/hyper.cfg"
for m in fact hyper; do
  lam=0.01
  [ $m = hyper ] && lam=0.001,0.01
  "$ntc" --threads 1 train --config "$tmp/$m.cfg" --data "$tmp/data" --lambda $lam --steps 2 --crop 64 --batch 1 \
    --out "$tmp/run_$m" >/dev/null 2>&1
  cp "$tmp/run_$m/model.ntcm" "$c/model/$m.ntcm"
  cp "$tmp/run_$m/checkpoint.ntck" "$c/checkpoint/$m.ntck"
  "$ntc" train --out "$tmp/run_$m" --snapshot "$c/checkpoint/${m}_snapshot.ntck" >/dev/null
done
du -sh "$c"
