"""What the failing cases have in common: ``passes for k <= 1, fails for k >= 2``.

Every case carries *tags*, numbers that describe it (``k`` inner steps, ``tasks`` in the
meta-batch, ``n`` examples, ...). When the cases that pass and the cases that fail are
separated by one tag's value, the report says so; an exercise can add a note per tag and
direction explaining what such a split usually means.
"""

from __future__ import annotations

NAMES = {"k": "k", "n": "n", "tasks": "M", "every": "m", "d_out": "d_out", "classes": "c"}


def _phrase(key, low, high, passes_low):
    name = NAMES.get(key, key)
    if key == "cross_entropy":
        return (
            "passes with the MSE loss, fails with cross-entropy"
            if passes_low
            else ("passes with cross-entropy, fails with the MSE loss")
        )
    if key == "k" and passes_low and low == 0:
        return f"passes only for k = 0 (no inner step), fails for k >= {high}"
    if key == "tasks" and passes_low and low == 1:
        return f"passes with one task, fails with several (M >= {high})"
    if key == "n" and passes_low and low == 1:
        return f"passes with one example, fails with n >= {high} examples"
    if passes_low:
        return f"passes for {name} <= {low}, fails for {name} >= {high}"
    return f"passes for {name} >= {high}, fails for {name} <= {low}"


def describe(cases, items, notes=None) -> str:
    """The pattern line of a report, or ``""`` when every case passes or every case fails.

    Parameters
    ----------
    cases : sequence of Case (each with a ``tags`` dict of numbers)
    items : the report's items (``item.case`` is the index of the case)
    notes : dict ``{(tag, "low" or "high"): text}``, said after the split ``"low"`` (passes for
        small values) or ``"high"`` (passes for large values) of that tag
    """
    failed = {it.case for it in items if not it.passed and it.case >= 0}
    if not failed or len(failed) == len(cases):
        return ""
    ok = [i for i in range(len(cases)) if i not in failed]
    parts, note = [], ""
    keys = list(dict.fromkeys(key for case in cases for key in case.tags))
    for key in keys:
        good = [cases[i].tags[key] for i in ok if key in cases[i].tags]
        bad = [cases[i].tags[key] for i in failed if key in cases[i].tags]
        if not good or not bad:
            continue
        if max(good) < min(bad):
            parts.append(_phrase(key, max(good), min(bad), True))
            if max(good) > 0:  # "passes for k = 0 only" says nothing about what one step would need
                note = note or (notes or {}).get((key, "low"), "")
        elif min(good) > max(bad):
            parts.append(_phrase(key, max(bad), min(good), False))
            note = note or (notes or {}).get((key, "high"), "")
    if not parts and len(failed) == 1:
        parts.append(f"fails only on {cases[next(iter(failed))].label}")
    text = "; ".join(parts)
    return f"{text}: {note}" if text and note else text
