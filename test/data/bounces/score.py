#!/usr/bin/env python3
"""Score `kasictl bounce parse` against expected.tsv: how many rows get sisimai's reason,
status and reply code, and the misses grouped by (sisimai reason, Kasi reason).

usage: KASI_RULES_DIR=rules test/data/bounces/score.py build-test/kasictl [-v]
"""
import collections, json, os, subprocess, sys

here = os.path.dirname(os.path.abspath(__file__))
kasictl = sys.argv[1]
verbose = '-v' in sys.argv[2:]
rows = []
with open(os.path.join(here, 'expected.tsv')) as f:
    next(f)
    for line in f:
        p = line.rstrip('\n').split('\t')
        rows.append(dict(file=p[0], rcpt=p[2].lower(), status=p[3], reason=p[4], code=p[5]))
files = sorted({r['file'] for r in rows})
got = collections.defaultdict(dict)
for i in range(0, len(files), 50):
    out = subprocess.run([kasictl, 'bounce', 'parse'] +
                         [os.path.join(here, 'emails', f) for f in files[i:i + 50]],
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        j = json.loads(line)
        got[os.path.basename(j['file'])][j['recipient'].lower()] = j

def pseudo(s):
    d = s.rfind('.')
    return d >= 0 and len(s) - d == 4 and s[d + 1] == '9'

n = len(rows)
rcpt = reason = code = status = real = 0
groups = collections.defaultdict(list)
for r in rows:
    g = got[r['file']].get(r['rcpt'])
    if not pseudo(r['status']):
        real += 1
    if g is None:
        groups[(r['reason'], '-missing-')].append((r['file'], r['rcpt'], ''))
        continue
    rcpt += 1
    if g['reason'] == r['reason']:
        reason += 1
    else:
        groups[(r['reason'], g['reason'])].append((r['file'], g['status'], g['diagnostic'][:150]))
    if str(g['replycode'] or '') == r['code']:
        code += 1
    elif verbose:
        print('code', r['file'], g['replycode'], 'want', r['code'])
    if not pseudo(r['status']):
        if g['status'] == r['status']:
            status += 1
        elif verbose:
            print('status', r['file'], g['status'], 'want', r['status'])
print(f'{n} rows; recipient {rcpt}, reason {reason} ({100.0 * reason / n:.1f}%), '
      f'reply code {code} ({100.0 * code / n:.1f}%), status {status} of {real} real statuses')
for k, v in sorted(groups.items(), key=lambda kv: -len(kv[1])):
    print(f'{len(v):3d} want {k[0]} got {k[1]}')
    for x in v:
        print('      ', *x)
