"""Multiple choice → fill-in-the-blank, as the GLM-4.1V-Thinking report does for RL data: a model that
can guess among 4 letters gets a 25 % reward for nothing, which pollutes the advantage.

    thinkcap train --mc-to-fill-in IN.jsonl OUT.jsonl

A record converts when it has `options` (a list, lettered A, B, ... in order, or a mapping letter →
text) and an `answer` naming one of them (letter, "(C)", "C." or the option text). The option lines
are removed from the prompt ("A. ...", "(B) ...", "C) ..." on their own line), the options go, and
the answer becomes the option's text, scored by `numeric` when it is a number, else `exact`.
Records without options pass through unchanged; a record whose answer names no option is an error.
"""

from __future__ import annotations

import json
import re
import string
import sys
from pathlib import Path
from typing import Any

_OPTION_LINE = re.compile(r"^\s*(?:\(([A-Z])\)|([A-Z])[.):])\s+.*$", re.MULTILINE)
_LETTER = re.compile(r"^\s*\(?([A-Za-z])\)?[.):]?\s*$")
FILL_IN_HINT = "Answer with the value itself, not an option letter."


def _options(raw: Any) -> dict[str, str]:
    if isinstance(raw, dict):
        return {str(k).strip().upper(): str(v) for k, v in raw.items()}
    return {string.ascii_uppercase[i]: str(v) for i, v in enumerate(raw)}


def _number(text: str) -> float | None:
    try:
        return float(text.replace(",", "").strip())
    except ValueError:
        return None


def convert(record: dict[str, Any], where: str = "record") -> dict[str, Any]:
    if "options" not in record:
        return record
    options = _options(record["options"])
    answer = str(record.get("answer", ""))
    letter = m.group(1).upper() if (m := _LETTER.match(answer)) else None
    if letter not in options:
        by_text = [k for k, v in options.items() if v.strip().lower() == answer.strip().lower()]
        letter = by_text[0] if by_text else None
    if letter is None:
        raise ValueError(f"{where}: answer {answer!r} names none of the options {sorted(options)}")
    text = options[letter].strip()
    out = {k: v for k, v in record.items() if k != "options"}
    out["answer"] = _number(text) if _number(text) is not None else text
    out["domain"] = "numeric" if _number(text) is not None else "exact"
    out["converted_from"] = "multiple_choice"
    if "prompt" in out:
        stripped = _OPTION_LINE.sub("", out["prompt"])
        out["prompt"] = re.sub(r"\n{3,}", "\n\n", stripped).strip() + " " + FILL_IN_HINT
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    src, dst = Path(argv[0]), Path(argv[1])
    try:
        lines = [json.loads(line) for line in src.read_text().splitlines() if line.strip()]
        out = [convert(r, f"{src}:{i}") for i, r in enumerate(lines, 1)]
    except (ValueError, OSError) as err:
        print(f"thinkcap train --mc-to-fill-in: error: {err}", file=sys.stderr)
        return 2
    dst.write_text("".join(json.dumps(r) + "\n" for r in out))
    n = sum(r.get("converted_from") == "multiple_choice" for r in out)
    print(f"{n} of {len(out)} records converted to fill-in-the-blank in {dst}")
    return 0
