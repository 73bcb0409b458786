#!/usr/bin/env python3
"""Re-verify this corpus against the real Ignition validator (Debian ignition 2.14).

Usage: check-with-ignition-validate.py [--bin /usr/bin/ignition-validate] [NAME-substring ...]

Rules (see README.md):
  valid/*.ign    exit 0; every 2.14 diagnostic must be listed in NAME.expect, either as a normal
                 line or as a `# ignition-2.14-only: LINE` comment (a line 2.14 prints but Boxcar must not).
  invalid/*.ign  without `# boxcar-stricter:` on the first line of NAME.expect: exit 1 and the
                 diagnostics must equal the .expect lines (level, path and LINE:COL exactly, message
                 as a substring). With `# boxcar-stricter:` the case is only reported, not checked.
A config whose version is "3.4.0" is validated as "3.4.0-experimental" (2.14 does not know 3.4.0).
Exit status: 0 when everything matches, 1 otherwise.
"""
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
LINE_RE = re.compile(r'^(error|warning|info) at (\$[^,]*), line (\d+) col (\d+): (.*)$')
PATHLESS_RE = re.compile(r'^(error|warning|info) at line (\d+) col (\d+): (.*)$')


def run_validate(binary, path):
    data = open(path, 'rb').read()
    data = data.replace(b'"3.4.0"', b'"3.4.0-experimental"')
    with tempfile.NamedTemporaryFile(suffix='.ign', delete=False) as f:
        f.write(data)
        tmp = f.name
    try:
        p = subprocess.run([binary, tmp], capture_output=True, text=True)
    finally:
        os.unlink(tmp)
    diags = []
    for line in p.stdout.splitlines():
        m = LINE_RE.match(line)
        if m:
            diags.append((m[1], m[2], f'{m[3]}:{m[4]}', m[5]))
            continue
        m = PATHLESS_RE.match(line)
        if m:
            diags.append((m[1], '-', f'{m[2]}:{m[3]}', m[4]))
        elif line.strip():
            diags.append(('raw', '-', '-', line))
    return p.returncode, diags, p.stderr.strip()


def parse_expect(path):
    exp, only214, stricter = [], [], None
    if not os.path.exists(path):
        return exp, only214, stricter
    lines = open(path).read().splitlines()
    for i, line in enumerate(lines):
        s = line.strip()
        if i == 0 and s.startswith('# boxcar-stricter:'):
            stricter = s.split(':', 1)[1].strip()
        if s.startswith('# ignition-2.14-only:'):
            only214.append(tuple(s.split(':', 1)[1].strip().split(' ', 3)))
        if not s or s.startswith('#'):
            continue
        exp.append(tuple(s.split(' ', 3)))
    return exp, only214, stricter


def matches(e, d):
    return e[0] == d[0] and e[1] == d[1] and e[2] == d[2] and e[3] in d[3]


def fmt(d):
    return ' '.join(d)


def main(argv):
    binary = '/usr/bin/ignition-validate'
    if len(argv) > 1 and argv[0] == '--bin':
        binary, argv = argv[1], argv[2:]
    failures = 0
    counts = {'valid': 0, 'invalid': 0, 'stricter': 0}
    for kind in ('valid', 'invalid'):
        d = os.path.join(HERE, kind)
        for name in sorted(os.listdir(d)):
            if not name.endswith('.ign') or (argv and not any(a in name for a in argv)):
                continue
            base = name[:-4]
            rc, diags, err = run_validate(binary, os.path.join(d, name))
            exp, only214, stricter = parse_expect(os.path.join(d, base + '.expect'))
            problems = []
            if kind == 'valid':
                counts['valid'] += 1
                if rc != 0:
                    problems.append(f'exit {rc} (stderr: {err})')
                for x in diags:
                    if not any(matches(e, x) for e in exp + only214):
                        problems.append(f'unexpected: {fmt(x)}')
                for e in exp:
                    if not any(matches(e, x) for x in diags):
                        problems.append(f'missing:    {fmt(e)}')
            elif stricter is not None:
                counts['stricter'] += 1
                print(f'info   invalid/{name}: boxcar-stricter, 2.14 exit {rc}'
                      + (f' stderr={err!r}' if err else '')
                      + ''.join(f'\n         {fmt(x)}' for x in diags))
            else:
                counts['invalid'] += 1
                if rc != 1:
                    problems.append(f'exit {rc}, expected 1')
                for x in diags:
                    if not any(matches(e, x) for e in exp):
                        problems.append(f'unexpected: {fmt(x)}')
                for e in exp:
                    if not any(matches(e, x) for x in diags):
                        problems.append(f'missing:    {fmt(e)}')
            if problems:
                failures += 1
                print(f'FAIL   {kind}/{name}')
                for p in problems:
                    print('         ' + p)
    print(f"checked {counts['valid']} valid, {counts['invalid']} invalid (+{counts['stricter']} boxcar-stricter, "
          f"not compared); {failures} failure(s)")
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
