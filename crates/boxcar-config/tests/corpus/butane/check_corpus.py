#!/usr/bin/env python3
"""Consistency checks for the Butane corpus (ok/ and err/ cases).

  check_corpus.py                 # all checks that need no extra tools
  check_corpus.py --butane BIN    # also compare with an upstream butane binary
  check_corpus.py --butane BIN --write   # regenerate ok/*/expected.ign
  check_corpus.py --butane BIN --examples ../../../../../examples
  check_corpus.py CASE...         # restrict to some case directories

Checks:
  * every ok/NAME has config.bu and a parseable expected.ign;
  * every generated data URL in expected.ign (a `source` starting with
    "data:" next to a `compression` key, not written verbatim in config.bu)
    is the encoding make_dataurl.py picks for its decoded bytes, and its
    contents are at least GZIP_MARGIN characters away from the point where
    gzip would start/stop winning (gzip sizes differ between deflate
    implementations, so the choice must not hinge on a few bytes);
  * ignition-validate (default /usr/bin/ignition-validate, or
    $IGNITION_VALIDATE) accepts every expected.ign; a 3.4.0 config is
    validated as "3.4.0-experimental" because Ignition 2.14 knows 3.4 only
    under that name;
  * every err/NAME has config.bu and a well-formed `expect`;
  * with --butane: upstream's output for each ok case equals expected.ign
    (gzip data URLs compared after decompression), upstream's warnings equal
    ok/NAME/expect (if any), and each err case fails upstream, except the
    ones whose expect contains "# upstream-accepts"; where upstream reports
    positioned diagnostics they must equal `expect` (level, path, line:col,
    message case-insensitively as a substring) unless expect contains
    "# upstream-differs"; upstream's raw diagnostics are printed with -v;
  * with --butane --examples DIR: every DIR/*.bu translates with --strict
    and its output passes the data URL and ignition-validate checks.
"""

import argparse
import base64
import glob
import gzip
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_dataurl import candidates, decode_data_url, make_data_url  # noqa: E402

GZIP_MARGIN = 12

EXPECT_RE = re.compile(r"^(error|warning) (\$\S*) (\d+):(\d+) (.+)$")

problems = []


def problem(case, msg):
    problems.append("%s: %s" % (case, msg))


def walk(obj, fn, path="$"):
    if isinstance(obj, dict):
        fn(obj, path)
        for k, v in obj.items():
            walk(v, fn, path + "." + k)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            walk(v, fn, "%s.%d" % (path, i))


def kind(url):
    return "base64" if url.startswith("data:;base64,") else "plain"


def check_data_urls(case, ign, bu_text):
    def check_margin(raw):
        # Different deflate implementations differ by a few bytes; keep the
        # corpus away from the gzip-or-not threshold.
        plain, b64, gz = candidates(raw)
        margin = min(len(plain), len(b64)) - (len(gz) + 4)
        if abs(margin) < GZIP_MARGIN:
            problem(case, "%s: within %d bytes of the gzip threshold (margin %d)"
                    % (path_holder[0], GZIP_MARGIN, margin))

    path_holder = [""]

    def fn(d, path):
        path_holder[0] = path
        src = d.get("source")
        if not isinstance(src, str) or not src.startswith("data:"):
            return
        if "compression" not in d:
            if src not in bu_text:
                problem(case, "%s: generated data URL without compression" % path)
            return
        if src in bu_text:
            return  # user-written source
        raw = decode_data_url(src)
        comp = d["compression"]
        if comp == "gzip":
            dec = gzip.decompress(raw)
            _, auto_comp = make_data_url(dec)
            if auto_comp == "gzip":
                check_margin(dec)
                return
            want_user, _ = make_data_url(raw, user_compression="gzip")
            if src == want_user and re.search(r"compression:\s*gzip", bu_text):
                return  # user set compression: gzip on pre-compressed data
            check_margin(dec)
            problem(case, "%s: upstream chose gzip, make_dataurl.py does not" % path)
            return
        if comp != "":
            problem(case, "%s: unexpected compression %r" % (path, comp))
            return
        check_margin(raw)
        want, wcomp = make_data_url(raw)
        if want != src:
            problem(case, "%s: data URL differs from make_dataurl.py (%s vs %s, compression %r)"
                    % (path, kind(src), kind(want), wcomp))

    walk(ign, fn)


def ignition_validate(case, path, ign):
    tool = os.environ.get("IGNITION_VALIDATE", "/usr/bin/ignition-validate")
    if not os.path.exists(tool):
        return "skipped"
    if ign.get("ignition", {}).get("version") == "3.4.0":
        ign = json.loads(json.dumps(ign))
        ign["ignition"]["version"] = "3.4.0-experimental"
        with tempfile.NamedTemporaryFile("w", suffix=".ign", delete=False) as f:
            json.dump(ign, f)
            path = f.name
    p = subprocess.run([tool, path], capture_output=True, text=True)
    if p.returncode != 0:
        problem(case, "ignition-validate failed: " + (p.stdout + p.stderr).strip())
    return "ok" if p.returncode == 0 else "FAIL"


def read_expect(case, path):
    args, lines = [], []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if line.startswith("# args:"):
                args = line[len("# args:"):].split()
                continue
            if not line.strip() or line.startswith("#"):
                continue
            m = EXPECT_RE.match(line)
            if not m:
                problem(case, "expect line %d malformed: %r" % (n, line))
                continue
            lines.append(m.groups())
    return args, lines


def normalize(obj):
    """Decompress gzip data URLs so outputs compare semantically."""
    def fn(d, path):
        src = d.get("source")
        if d.get("compression") == "gzip" and isinstance(src, str) and src.startswith("data:"):
            try:
                d["source"] = "gunzip:" + base64.b64encode(
                    gzip.decompress(decode_data_url(src))).decode()
            except OSError:
                pass
    walk(obj, fn)
    return obj


RAW_RE = re.compile(r"^(error|warning) at (\$\S*), line (\d+) col (\d+): (.*)$")


def run_butane(butane, case_dir, extra_args):
    args = [butane, "-p", "--raw-errors"]
    no_files_dir = "--no-files-dir" in extra_args
    extra = [a for a in extra_args if a != "--no-files-dir"]
    if os.path.isdir(os.path.join(case_dir, "files")) and not no_files_dir:
        args += ["-d", os.path.join(case_dir, "files")]
    args += extra + [os.path.join(case_dir, "config.bu")]
    return subprocess.run(args, capture_output=True, text=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--butane")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--write", action="store_true",
                    help="with --butane: (re)write ok/*/expected.ign from upstream output")
    ap.add_argument("--examples", metavar="DIR",
                    help="with --butane: also translate DIR/*.bu (strict, -d DIR/files) and validate")
    ap.add_argument("cases", nargs="*")
    a = ap.parse_args()

    ok_cases = sorted(glob.glob(os.path.join(HERE, "ok", "*", "")))
    err_cases = sorted(glob.glob(os.path.join(HERE, "err", "*", "")))
    if a.cases:
        want = {os.path.abspath(c).rstrip("/") for c in a.cases}
        ok_cases = [c for c in ok_cases if c.rstrip("/") in want]
        err_cases = [c for c in err_cases if c.rstrip("/") in want]

    for d in ok_cases:
        case = os.path.relpath(d, HERE).rstrip("/")
        bu = os.path.join(d, "config.bu")
        exp = os.path.join(d, "expected.ign")
        if a.butane and a.write:
            p = run_butane(a.butane, d, [])
            if p.returncode == 0:
                with open(exp, "w") as f:
                    f.write(p.stdout if p.stdout.endswith("\n") else p.stdout + "\n")
        if not os.path.exists(bu) or not os.path.exists(exp):
            problem(case, "missing config.bu or expected.ign")
            continue
        with open(bu) as f:
            bu_text = f.read()
        with open(exp) as f:
            ign = json.load(f)
        check_data_urls(case, ign, bu_text)
        v = ignition_validate(case, exp, ign)
        args, expect = [], []
        if os.path.exists(os.path.join(d, "expect")):
            args, expect = read_expect(case, os.path.join(d, "expect"))
            for lv, *_ in expect:
                if lv == "error":
                    problem(case, "ok case expects an error")
        if a.butane:
            p = run_butane(a.butane, d, args)
            if p.returncode != 0:
                problem(case, "upstream butane failed:\n" + p.stderr)
            else:
                if normalize(json.loads(p.stdout)) != normalize(json.loads(json.dumps(ign))):
                    problem(case, "upstream output differs from expected.ign")
                got = sorted((m.group(1), m.group(2), int(m.group(3)), int(m.group(4)), m.group(5))
                             for m in map(RAW_RE.match, p.stderr.splitlines()) if m)
                exp_diag = sorted((lv, pth, int(l), int(c), msg) for lv, pth, l, c, msg in expect)
                if len(got) != len(exp_diag) or any(
                        g[:4] != e[:4] or e[4].lower() not in g[4].lower()
                        for g, e in zip(got, exp_diag)):
                    problem(case, "upstream diagnostics differ:\n  got  %s\n  want %s"
                            % (got, exp_diag))
        if a.verbose:
            print("ok  %-40s validate=%s" % (case, v))

    for d in err_cases:
        case = os.path.relpath(d, HERE).rstrip("/")
        bu = os.path.join(d, "config.bu")
        ex = os.path.join(d, "expect")
        if not os.path.exists(bu) or not os.path.exists(ex):
            problem(case, "missing config.bu or expect")
            continue
        args, expect = read_expect(case, ex)
        with open(ex) as f:
            text = f.read()
        upstream_accepts = "# upstream-accepts" in text
        upstream_differs = upstream_accepts or "# upstream-differs" in text
        if not any(lv == "error" for lv, *_ in expect) and "--strict" not in args:
            problem(case, "err case expects no error (and is not --strict)")
        if a.butane:
            p = run_butane(a.butane, d, args)
            if (p.returncode == 0) != upstream_accepts:
                problem(case, "upstream butane %s it" % (
                    "accepted" if p.returncode == 0 else "rejected"))
            got = sorted((m.group(1), m.group(2), int(m.group(3)), int(m.group(4)), m.group(5))
                         for m in map(RAW_RE.match, p.stderr.splitlines()) if m)
            want = sorted((lv, pth, int(l), int(c), msg) for lv, pth, l, c, msg in expect)
            same = len(got) == len(want) and all(
                g[:4] == w[:4] and w[4].lower() in g[4].lower() for g, w in zip(got, want))
            if got and not same and not upstream_differs:
                problem(case, "positional diagnostics differ from upstream:\n  got  %s\n  want %s"
                        % (got, want))
            if a.verbose:
                print("err %s\n  upstream: %s\n  expect:   %s" % (
                    case, p.stderr.strip().replace("\n", "\n            "),
                    "\n            ".join(" ".join(e) for e in expect)))

    if a.examples:
        if not a.butane:
            problem("examples", "--examples needs --butane")
        else:
            ex_dir = os.path.abspath(a.examples)
            for bu in sorted(glob.glob(os.path.join(ex_dir, "*.bu"))):
                case = "examples/" + os.path.basename(bu)
                p = subprocess.run([a.butane, "-p", "--strict", "-d", os.path.join(ex_dir, "files"), bu],
                                   capture_output=True, text=True)
                if p.returncode != 0:
                    problem(case, "upstream butane failed:\n" + p.stderr)
                    continue
                ign = json.loads(p.stdout)
                with open(bu) as f:
                    check_data_urls(case, ign, f.read())
                with tempfile.NamedTemporaryFile("w", suffix=".ign", delete=False) as f:
                    f.write(p.stdout)
                v = ignition_validate(case, f.name, ign)
                if a.verbose:
                    print("ex  %-40s validate=%s" % (case, v))

    for p in problems:
        print("PROBLEM " + p)
    print("%d ok cases, %d err cases, %d problems" % (len(ok_cases), len(err_cases), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
