#!/bin/bash
# The main job: Boxcar as an operating system, end to end, on one machine,
# as root (crates/boxcar-testbed/examples/demo.rs):
#   1. build Boxcar images N and N+1 from images/boxcar.toml (Debian 12
#      packages, erofs /usr with dm-verity, UKI, systemd-boot, signed update
#      payload; cached under the target dir, the Debian root under
#      /var/cache/boxcar-image);
#   2. start the update server with its embedded SQLite database;
#   3. boot image N in QEMU (OVMF, systemd-boot, UKI) with examples/demo.bu
#      passed through fw_cfg: a user, a web page and a podman container
#      serving it; print the page fetched from the host;
#   4. publish N+1 and follow the update on the server and the node's
#      console: the agent downloads and stages it into the other slot, the
#      node reboots into N+1, the boot is blessed, the server shows the
#      instance complete (--no-update stops after step 3).
# Each step says how long it took. Under software emulation (no KVM) a boot
# takes minutes; the whole demo takes about 20-40 minutes the first time.
# The component demo (translation, provisioning onto a loop device, the
# update server with a simulated node) is scripts/demo-components.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/boxcar-target}
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
exec cargo run -q -p boxcar-testbed --example demo -- "$@"
