"""Counts test cases over every suite from meson's testlog.json files and prints the closing
line 'N passed, N failed'. A suite's own summary line gives its counts: Catch2's console
summary or the integration harness's 'cases: P passed, F failed'; a failed suite that printed
no summary counts as one failure. Exit status 1 if anything failed."""
import json
import re
import sys

passed = failed = 0
for path in sys.argv[1:]:
    try:
        entries = [json.loads(l) for l in open(path) if l.strip()]
    except OSError as e:
        print(f"{path}: {e}")
        failed += 1
        continue
    for e in entries:
        out = (e.get("stdout") or "") + (e.get("stderr") or "")
        ok = e.get("result") == "OK"
        m = re.search(r"cases: (\d+) passed, (\d+) failed", out)
        c_all = re.search(r"All tests passed \(\d+ assertions? in (\d+) test cases?\)", out)
        c_mix = re.search(r"test cases:\s*(\d+) \|\s*(\d+) passed \|\s*(\d+) failed", out)
        if m:
            p, f = int(m.group(1)), int(m.group(2))
        elif c_all:
            p, f = int(c_all.group(1)), 0
        elif c_mix:
            p, f = int(c_mix.group(2)), int(c_mix.group(3))
        else:
            p, f = (1, 0) if ok else (0, 1)
        if not ok and f == 0:
            f = 1  # crashed, sanitizer report or timeout after its summary
        print(f"{e.get('name')}: {p} passed, {f} failed ({path.split('/')[0]})")
        passed += p
        failed += f
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
