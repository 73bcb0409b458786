#!/bin/bash
# The component demo (before images booted this was the main job; now
# scripts/demo.sh is). Each part on its own, on one machine, as root:
#   1. translate and validate every Butane example (Boxcar and the real
#      ignition-validate);
#   2. provision a node root from merged examples with boxcar-provision
#      (users, SSH keys, files, units, presets), and show its report;
#   3. provision the data-disk example onto a real loop device (partition,
#      format, mount, write, unmount) and read the result back;
#   4. run the update server on SQLite, publish a release, and let a node
#      that speaks Flatcar's Omaha check in, get the update and report
#      its progress; show the fleet view.
# Each step says how long it took.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/boxcar-target}
profile=${BOXCAR_PROFILE:-release}
flag=$([ "$profile" = release ] && echo --release || true)
echo "building ($profile) ..."
cargo build $flag -q -p boxcar-cli -p boxcar-provision -p boxcar-server
bin="$CARGO_TARGET_DIR/$profile"

work=$(mktemp -d /tmp/boxcar-demo.XXXXXX)
server_pid=""
loopdev=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  [ -n "$loopdev" ] && losetup -d "$loopdev" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

t0=$SECONDS
step() { echo; echo "== $* (t+$((SECONDS - t0))s)"; }

step "1. Butane examples -> Ignition, validated by boxcar and by ignition-validate"
for bu in examples/*.bu; do
  ign="$work/$(basename "${bu%.bu}").ign"
  "$bin/boxcar" butane --strict --pretty -d examples/files "$bu" -o "$ign"
  "$bin/boxcar" validate "$ign"
  sed 's/"3.4.0"/"3.4.0-experimental"/' "$ign" > "$ign.peer" && ignition-validate "$ign.peer" >/dev/null
  echo "ok  $bu -> $(wc -c < "$ign") bytes"
done

step "2. Provision a node root from three merged examples"
"$bin/boxcar" butane --strict -d examples/files \
  examples/ssh-user-sudo.bu examples/hostname-timezone.bu examples/web-server-nginx.bu -o "$work/node.ign"
root="$work/root"
mkdir -p "$root/etc"
# A minimal target: the accounts and groups a Flatcar /etc starts with.
printf 'root:x:0:0:root:/root:/bin/bash\n' > "$root/etc/passwd"
printf 'root:x:0:\nsudo:x:27:\ndocker:x:233:\n' > "$root/etc/group"
printf 'root:*:19000:0:99999:7:::\n' > "$root/etc/shadow"
printf 'root:*::\nsudo:*::\ndocker:*::\n' > "$root/etc/gshadow"
chmod 0640 "$root/etc/shadow" "$root/etc/gshadow"
echo "-- dry run (first lines):"
"$bin/boxcar-provision" --log warn --root "$root" --config "$work/node.ign" --run-dir "$work/run-dry" --dry-run 2>/dev/null | head -n 12
echo "-- apply:"
"$bin/boxcar-provision" --log warn --root "$root" --config "$work/node.ign" --run-dir "$work/run"
echo "-- result:"
(cd "$root" && find . -newer "$work/node.ign" \( -type f -o -type l \) ! -name '*-' | sort | sed 's/^\./  /')
grep -E '^(core|alice):' "$root/etc/passwd" | sed 's/^/  passwd: /'
grep -E '^(sudo|docker):' "$root/etc/group" | sed 's/^/  group:  /'
sed 's/^/  preset: /' "$root/etc/systemd/system-preset/20-ignition.preset"
python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print("  result file:", ", ".join("%s=%s" % (k, r[k]) for k in sorted(r) if k != "stages"))
' "$root/etc/.boxcar-provision-result.json"

step "3. Provision the data-disk example onto a loop device"
truncate -s 256M "$work/disk.img"
loopdev=$(losetup --find --show --partscan "$work/disk.img")
sed -e "s#/dev/disk/by-id/virtio-docker-data#$loopdev#" "$work/data-disk.ign" > "$work/disk.ign"
mkdir -p "$work/root2/etc"
cp "$root/etc/passwd" "$root/etc/group" "$root/etc/shadow" "$root/etc/gshadow" "$work/root2/etc/"
"$bin/boxcar-provision" --log warn --root "$work/root2" --config "$work/disk.ign" --run-dir "$work/run2" --device-timeout 20
sfdisk --json "$loopdev" | python3 -c '
import json, sys
for p in json.load(sys.stdin)["partitiontable"]["partitions"]:
    print("  partition %s: name=%s size=%d MiB" % (p["node"], p.get("name"), p["size"] * 512 >> 20))'
echo "  filesystem: $(blkid -o export "${loopdev}p1" | grep -E '^(TYPE|LABEL)=' | tr '\n' ' ')"
echo "  mount unit: $(ls "$work/root2/etc/systemd/system/" | grep mount)"

step "4. Update server (SQLite), a release, and a Flatcar-speaking node"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
db="$work/server.db"
token=$("$bin/boxcar-server" token --db "$db" --name demo --role admin 2>/dev/null)
"$bin/boxcar-server" serve --db "$db" --listen "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server_pid=$!
export BOXCAR_SERVER="http://127.0.0.1:$port" BOXCAR_TOKEN="$token"
for _ in $(seq 100); do curl -sf "$BOXCAR_SERVER/metrics" >/dev/null && break; sleep 0.1; done
payload="$work/flatcar_production_update.gz"
head -c 1048576 /dev/urandom > "$payload"
"$bin/boxcar" fleet publish --version 4100.0.0 --url "http://127.0.0.1:$port/payloads/" \
  --filename "$(basename "$payload")" --size "$(stat -c %s "$payload")" \
  --sha256 "$(sha256sum "$payload" | cut -d' ' -f1)" \
  --sha1 "$(openssl dgst -sha1 -binary "$payload" | base64)" --channel stable >/dev/null
echo "published 4100.0.0 to stable"
omaha() { # event or check from machine $1 at version $2: extra XML in $3
  curl -sf -H 'Content-Type: text/xml' --data-binary @- "$BOXCAR_SERVER/v1/update/" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<request protocol="3.0" version="update_engine-0.4.10" updaterversion="update_engine-0.4.10" installsource="scheduler" ismachine="1">
 <os version="Chateau" platform="CoreOS" sp="$2_x86_64"></os>
 <app appid="{e96281a6-d1af-4bde-9a0a-97b76e56dc57}" version="$2" track="stable" bootid="{$(cat /proc/sys/kernel/random/uuid)}" oem="qemu" machineid="$1" lang="en-US" board="amd64-usr" delta_okay="false">$3</app>
</request>
EOF
}
node=$(cat /proc/sys/kernel/random/uuid | tr -d -)
echo "-- update check from a node on 4081.2.0:"
omaha "$node" 4081.2.0 '<ping active="1"></ping><updatecheck></updatecheck>' | sed 's/></>\n</g' | grep -E 'updatecheck|manifest|url |package |action' | sed 's/^/  /'
# As update_engine reports: download started, downloaded, installed
# (reboot pending); then, after the reboot, a check from the new version.
for ev in 13 14 3; do
  omaha "$node" 4081.2.0 "<event eventtype=\"$ev\" eventresult=\"1\"></event>" >/dev/null
done
omaha "$node" 4100.0.0 '<ping active="1"></ping><updatecheck></updatecheck><event eventtype="3" eventresult="2" previousversion="4081.2.0"></event>' >/dev/null
echo "-- a second node installs 4100.0.0, but comes back on 4081.2.0 (rollback):"
node2=$(cat /proc/sys/kernel/random/uuid | tr -d -)
omaha "$node2" 4081.2.0 '<ping active="1"></ping><updatecheck></updatecheck>' >/dev/null
for ev in 13 14 3; do
  omaha "$node2" 4081.2.0 "<event eventtype=\"$ev\" eventresult=\"1\"></event>" >/dev/null
done
omaha "$node2" 4081.2.0 '<ping active="1"></ping><updatecheck></updatecheck><event eventtype="3" eventresult="0" errorcode="44"></event>' >/dev/null
echo "-- fleet view:"
"$bin/boxcar" fleet instances --app flatcar | sed 's/^/  /'
"$bin/boxcar" fleet activity | head -n 4 | sed 's/^/  /'
echo
echo "done in $((SECONDS - t0))s"
