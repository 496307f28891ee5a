"""Accuracy verifiers: `(boxed answer text, reference) -> score in [0, 1]`, one per task domain.

They see only the content of `<|begin_of_box|>...<|end_of_box|>` (the reward code extracts it), so
a model cannot earn accuracy with text around the answer. References come from the JSONL record's
`answer` field; the expected shape of each is in its docstring.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from rapidfuzz.distance import Levenshtein

Verifier = Callable[[str, Any], float]

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty".split())}


def _first_number(text: str) -> float | None:
    """The first number in `text` ("1,200" → 1200, "25%" → 25, "seven" → 7); None if there is none."""
    cleaned = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)
    match = _NUMBER.search(cleaned)
    if match:
        return float(match.group())
    word = re.fullmatch(r"\s*([a-zA-Z]+)\s*\.?\s*", text)
    return float(_WORDS[word.group(1).lower()]) if word and word.group(1).lower() in _WORDS else None


def _normalise(text: str) -> str:
    """Lowercase, drop surrounding punctuation/LaTeX text wrappers, collapse whitespace."""
    text = re.sub(r"\\text\{([^}]*)\}", r"\1", text)
    return " ".join(text.lower().strip().strip(".,;:!?\"'`$").split())


def verify_math(pred: str, ref: Any) -> float:
    """Symbolic equivalence with math-verify: "1/2" == "0.5" == "\\frac{1}{2}". ref: str or number."""
    from math_verify import parse, verify  # slow import (sympy); only math tasks pay for it

    def wrap(text: str) -> str:
        # math-verify finds LaTeX inside $...$; bare "\sqrt{4}" would otherwise not parse.
        return text if "$" in text or "\\" not in text else f"${text}$"

    gold, answer = parse(wrap(str(ref))), parse(wrap(pred))
    return float(bool(gold) and bool(answer) and verify(gold, answer))


def verify_numeric(pred: str, ref: Any) -> float:
    """ref: a number, or {"value": x, "rel_tol": r, "abs_tol": a} (default rel 1%, abs 1e-6)."""
    spec = ref if isinstance(ref, dict) else {"value": ref}
    value = _first_number(pred)
    target = float(spec["value"])
    if value is None or not math.isfinite(value):
        return 0.0
    return float(math.isclose(value, target, rel_tol=spec.get("rel_tol", 0.01), abs_tol=spec.get("abs_tol", 1e-6)))


def verify_counting(pred: str, ref: Any) -> float:
    """ref: an int. The prediction must be exactly that whole number ("3", "three", "3 shapes")."""
    value = _first_number(pred)
    return float(value is not None and value == int(ref))


def verify_exact(pred: str, ref: Any) -> float:
    """ref: a string or a list of accepted strings; compared after `_normalise`."""
    accepted = ref if isinstance(ref, list) else [ref]
    return float(_normalise(pred) in {_normalise(str(a)) for a in accepted})


def _option_letter(text: str) -> str | None:
    match = re.match(r"\s*\(?([A-Za-z])\)?(?:[.:)\s]|$)", text)
    return match.group(1).upper() if match else None


def verify_multiple_choice(pred: str, ref: Any) -> float:
    """ref: the option letter ("C") or the option text; "(C)", "C.", "c) text" all match "C"."""
    ref_text = str(ref).strip()
    if len(ref_text) == 1 and ref_text.isalpha():
        return float(_option_letter(pred) == ref_text.upper())
    return verify_exact(pred, ref_text)


def verify_ocr(pred: str, ref: Any) -> float:
    """1 - normalised Levenshtein distance between whitespace-collapsed strings (case kept)."""
    a, b = " ".join(pred.split()), " ".join(str(ref).split())
    if not a and not b:
        return 1.0
    return 1.0 - Levenshtein.normalized_distance(a, b)


def _numbers(text: str) -> list[float]:
    return [float(x) for x in _NUMBER.findall(text)]


def _box_iou(a: list[float], b: list[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = lambda r: max(0.0, r[2] - r[0]) * max(0.0, r[3] - r[1])  # noqa: E731
    union = area(a) + area(b) - inter
    return inter / union if union > 0 else 0.0


def verify_grounding(pred: str, ref: Any) -> float:
    """Boxes [x1, y1, x2, y2] in 0-1000 coordinates. ref: one box or a list of boxes. Each reference
    box is matched (greedily, best IoU first) to a distinct predicted box; the score is the mean IoU
    over max(#predicted, #reference), so extra or missing boxes cost."""
    refs = [ref] if ref and not isinstance(ref[0], (list, tuple)) else list(ref)
    values = _numbers(pred)
    preds = [values[i:i + 4] for i in range(0, len(values) - len(values) % 4, 4)]
    if not preds or not refs:
        return float(not preds and not refs)
    pairs = sorted(((_box_iou(p, r), i, j) for i, p in enumerate(preds) for j, r in enumerate(refs)), reverse=True)
    used_p, used_r, total = set(), set(), 0.0
    for iou, i, j in pairs:
        if i not in used_p and j not in used_r:
            used_p.add(i)
            used_r.add(j)
            total += iou
    return total / max(len(preds), len(refs))


def verify_temporal_grounding(pred: str, ref: Any) -> float:
    """A time span [start, end] in seconds; the score is the IoU of the two intervals."""
    values = _numbers(pred)
    if len(values) != 2 or values[1] < values[0]:
        return 0.0
    (s, e), (rs, re_) = values, (float(ref[0]), float(ref[1]))
    inter = max(0.0, min(e, re_) - max(s, rs))
    union = max(e, re_) - min(s, rs)
    return inter / union if union > 0 else float(s == rs and e == re_)


VERIFIERS: dict[str, Verifier] = {
    "math": verify_math,
    "numeric": verify_numeric,
    "counting": verify_counting,
    "running_sum": verify_counting,  # tasks.running_sums: a whole number, but not a count of things
    "exact": verify_exact,
    "multiple_choice": verify_multiple_choice,
    "ocr": verify_ocr,
    "grounding": verify_grounding,
    "temporal_grounding": verify_temporal_grounding,
}

# The one list of known domains: records are loaded, evaluated and trained against this.
DOMAINS: frozenset[str] = frozenset(VERIFIERS)
