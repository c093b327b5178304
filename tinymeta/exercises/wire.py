"""The student's outputs as JSON, from the check process back to the grading process.

JSON, not pickle: unpickling runs code, and the check process runs the student's code, so
nothing it writes may be able to run code in the grader. Arrays of numbers, numbers, strings,
tuples, lists and dicts round-trip exactly (floats as their shortest repr, NaN and inf
included); anything else arrives as a :class:`Foreign` placeholder that names its type.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

MAX_DEPTH = 8
MAX_VALUES = 2_000_000
"""More numbers than this in one output is refused (no exercise returns more than a few thousand)."""


@dataclass(frozen=True)
class Foreign:
    """An output that could not be sent as data; ``type`` names what it was."""

    type: str
    text: str = ""

    def __repr__(self):
        return f"<{self.type} {self.text[:60]}>"


def encode(obj, depth=0, budget=None):
    """A JSON-ready structure for ``obj`` (see the module docstring)."""
    budget = [MAX_VALUES] if budget is None else budget
    if depth > MAX_DEPTH:
        return {"foreign": "nesting deeper than 8 levels"}
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj)
    if obj is None or isinstance(obj, str):
        return obj if obj is None else obj[:1000]
    if isinstance(obj, np.ndarray) and obj.dtype.kind in "biuf":
        budget[0] -= obj.size
        if budget[0] < 0:
            return {"foreign": f"array of {obj.size} values (too large to send)"}
        kind = "int" if obj.dtype.kind in "biu" else "float"
        values = obj.astype(np.float64 if kind == "float" else np.int64).ravel().tolist()
        return {"array": kind, "shape": list(obj.shape), "data": values}
    if isinstance(obj, (tuple, list)):
        items = [encode(x, depth + 1, budget) for x in obj]
        return {"tuple": items} if isinstance(obj, tuple) else {"list": items}
    if isinstance(obj, dict):
        return {
            "dict": [[encode(k, depth + 1, budget), encode(v, depth + 1, budget)] for k, v in obj.items()]
        }
    name = type(obj).__name__
    if isinstance(obj, np.ndarray):
        name = f"ndarray of dtype {obj.dtype}"
    try:
        text = repr(obj)[:200]
    except Exception:  # a student's object whose repr fails
        text = ""
    return {"foreign": name, "text": text}


def decode(data, depth=0):
    """The object :func:`encode` described; raises ``ValueError`` for anything malformed."""
    if depth > MAX_DEPTH + 1:
        raise ValueError("nesting too deep")
    if data is None or isinstance(data, (bool, int, float, str)):
        return data
    if not isinstance(data, dict) or len(data) not in (1, 2, 3):
        raise ValueError(f"unexpected {type(data).__name__}")
    if "array" in data:
        dtype = {"int": np.int64, "float": np.float64}[data["array"]]
        shape = tuple(int(s) for s in data["shape"])
        values = np.array(data["data"], dtype=dtype)
        return values.reshape(shape)
    if "tuple" in data:
        return tuple(decode(x, depth + 1) for x in data["tuple"])
    if "list" in data:
        return [decode(x, depth + 1) for x in data["list"]]
    if "dict" in data:
        out = {}
        for k, v in data["dict"]:
            key = decode(k, depth + 1)
            try:
                hash(key)
            except TypeError:
                key = repr(key)
            out[key] = decode(v, depth + 1)
        return out
    if "foreign" in data:
        return Foreign(str(data["foreign"]), str(data.get("text", "")))
    raise ValueError(f"unknown record {sorted(data)}")


def dumps(record) -> str:
    """One line of JSON (NaN and inf written as NaN, Infinity, -Infinity)."""
    return json.dumps(record, allow_nan=True, separators=(",", ":"))


def loads(line):
    """The record of one line; raises ``ValueError`` for anything that is not one."""
    record = json.loads(line)
    if not isinstance(record, dict):
        raise ValueError("a report line must be a JSON object")
    return record
