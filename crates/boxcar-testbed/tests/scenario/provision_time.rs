//! How long first-boot provisioning took, read inside the guest: a shell
//! script the demo and the scenario tests install through their Butane
//! overlays and run after boot.

/// Prints one line to stdout: `ran=no` when no `boxcar-provision-*` unit ran
/// in this boot (not a first boot), otherwise `ran=yes start=<s> end=<s>
/// seconds=<s> stages: <stage>=<ms>ms …`. `start`/`end` are the kernel-time
/// seconds of the first unit start and the last unit finish, from the journal
/// the initrd hands over; the stages are boxcar-provision's own timings from
/// its result file.
pub const SCRIPT: &str = r#"#!/bin/sh
stages=$(tr -d ' \n' < /etc/.boxcar-provision-result.json 2>/dev/null | grep -o '"stage":"[^"]*"\|"durationMs":[0-9]*' | sed 's/"stage":"\(.*\)"/\1/; s/"durationMs":\([0-9]*\)/\1ms/' | paste -sd' ' | sed 's/\([a-z-]*\) \([0-9]*ms\)/\1=\2/g')
journalctl -b -o short-monotonic --no-pager _PID=1 | awk -v stages="$stages" '
  /(Starting|Finished) boxcar-provision-/ { t = $0; sub(/^\[ */, "", t); sub(/\].*/, "", t); t += 0
    if ($0 ~ /Starting/ && first == "") first = t
    if ($0 ~ /Finished/) last = t }
  END { if (first == "") print "ran=no"
        else printf "ran=yes start=%.2f end=%.2f seconds=%.2f stages: %s\n", first, last, last - first, stages }'
"#;
