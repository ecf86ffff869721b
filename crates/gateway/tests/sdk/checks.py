"""The runner both SDK scripts share: register checks with `@check`, then `run(label)` runs
each, prints ok/FAIL per check and a summary line, and exits non-zero if any failed."""

import sys

_checks = {}


def check(fn):
    _checks[fn.__name__] = fn
    return fn


def run(label):
    failed = 0
    for name, fn in _checks.items():
        try:
            fn()
            print(f"ok   {name}")
        except Exception as e:  # noqa: BLE001 - report every failing check
            failed += 1
            print(f"FAIL {name}: {type(e).__name__}: {e}")
    print(f"{label}: {len(_checks) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
