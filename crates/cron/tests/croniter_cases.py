"""Random cron expressions and their next times by Python's croniter, as JSON lines on stdout.

Usage: croniter_cases.py SEED COUNT. Each line: {"expr", "start", "next": [5 RFC 3339 times]}
or {"expr", "start", "error": "..."} when croniter refuses the expression. All in UTC (the
time-zone rules are tested separately: croniter's DST handling is its own, not Vixie cron's).
Left out, being croniter's own readings that no cron shares (documented in crates/cron):
one-value ranges (`22-22` is `*` to croniter), `L` beside a day of week (croniter matches days
that are neither), `*/1` or `*/N` inside a list in a day field, and day-of-week lists covering
the whole week (croniter then ignores them).
"""
import json
import random
import sys
from datetime import datetime, timedelta, timezone

from croniter import croniter

FIELDS = [(0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 6)]  # sec min hour dom month dow
MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]


def atom(rng, lo, hi, idx):
    kind = rng.random()
    if kind < 0.25:
        return "*"
    if kind < 0.40:
        # Day fields: `*/1` and `*/N` inside lists are left out (croniter reads a day field
        # with `*` in a list, or `*/1`, in ways of its own that no cron shares).
        first = 2 if idx in (3, 5) else 1
        return "*/%d" % rng.randint(first, max(first, (hi - lo) // 2 + 1))
    if kind < 0.70:
        v = rng.randint(lo, hi)
        if idx == 4 and rng.random() < 0.3:
            return MONTHS[v - 1]
        if idx == 5 and rng.random() < 0.3:
            return DAYS[v]
        return str(v)
    # a < b: croniter reads a one-value range (`22-22`) as `*`, which Vixie cron does not.
    a = rng.randint(lo, hi - 1)
    b = rng.randint(a + 1, hi)
    if kind < 0.85:
        return "%d-%d" % (a, b)
    return "%d-%d/%d" % (a, b, rng.randint(1, max(1, b - a + 1)))


def covers_week(text):
    """Whether a day-of-week list allows all seven days (croniter then reads it as `*`, and
    needs day-of-month alone to match, where cron ORs both fields)."""
    days = set()
    for part in text.split(","):
        rng_, _, step = part.partition("/")
        step = int(step or 1)
        if rng_ == "*":
            a, b = 0, 6
        elif "-" in rng_:
            a, b = (int(x) for x in rng_.split("-"))
        elif rng_.upper() in DAYS:
            a = b = DAYS.index(rng_.upper())
        else:
            a = b = int(rng_)
        days.update(v % 7 for v in range(a, b + 1, step))
    return len(days) == 7


def field(rng, idx):
    lo, hi = FIELDS[idx]
    n = 1 if rng.random() < 0.7 else rng.randint(2, 3)
    parts = [atom(rng, lo, hi, idx) for _ in range(n)]
    if len(parts) > 1:
        parts = [p for p in parts if not p.startswith("*") or idx not in (3, 5)]
        parts = [p for p in parts if p != "*"] or ["*"]
    text = ",".join(parts)
    if idx == 5 and "," in text and covers_week(text):
        return "*"
    return text


def main():
    seed, count = int(sys.argv[1]), int(sys.argv[2])
    rng = random.Random(seed)
    base = datetime(2024, 1, 1, tzinfo=timezone.utc)
    for _ in range(count):
        six = rng.random() < 0.3
        idxs = range(0, 6) if six else range(1, 6)
        expr = " ".join(field(rng, i) for i in idxs)
        start = base + timedelta(seconds=rng.randint(0, 4 * 365 * 86400))
        rec = {"expr": expr, "start": start.isoformat()}
        try:
            it = croniter(expr, start, second_at_beginning=six)
            rec["next"] = [it.get_next(datetime).isoformat() for _ in range(5)]
        except Exception as e:  # croniter refuses it: so must we
            rec["error"] = str(e)
        print(json.dumps(rec))


main()
