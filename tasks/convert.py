"""`thinkcap eval convert SRC OUT.jsonl`: a VQA file (JSONL or CSV: image path, question, optional
choices, answer) into the training record format, so MathVista/MMMU-style data on disk evaluates
(and trains) with the same verifiers.

- With choices, the prompt lists them as "A. ...", the domain is `multiple_choice` and the answer
  becomes the option letter (an answer given as the option's text or as a letter both work).
- Without choices, a numeric answer gets the `numeric` domain, anything else `exact`;
  `--domain` overrides (e.g. `math` for symbolic answers).
Image paths are read relative to SRC and written relative to OUT.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import string
import sys
from pathlib import Path
from typing import Any

from tasks.synthetic import BOX_HINT
from scoring.verifiers import DOMAINS


def read_rows(src: Path) -> list[dict[str, Any]]:
    if src.suffix.lower() == ".csv":
        with src.open(newline="") as f:
            return list(csv.DictReader(f))
    if src.suffix.lower() in (".jsonl", ".json"):
        return [json.loads(line) for line in src.read_text().splitlines() if line.strip()]
    raise ValueError(f"{src}: expected a .jsonl or .csv file")


def parse_choices(value: Any) -> list[str]:
    """A list, a JSON list, or "a|b|c"; empty/missing means an open question."""
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    text = str(value).strip()
    if text.startswith("["):
        return [str(v) for v in json.loads(text)]
    return [c.strip() for c in text.split("|")]


def choice_letter(answer: Any, choices: list[str], where: str) -> str:
    text = str(answer).strip()
    letters = string.ascii_uppercase[: len(choices)]
    if len(text) == 1 and text.upper() in letters:
        return text.upper()
    for letter, choice in zip(letters, choices):
        if text == choice.strip():
            return letter
    raise ValueError(f"{where}: answer {answer!r} is neither an option letter ({letters}) nor one of the choices")


def _is_number(value: Any) -> bool:
    try:
        float(str(value).strip())
        return True
    except ValueError:
        return False


def convert_row(row: dict[str, Any], index: int, src: Path, out_dir: Path, cols: argparse.Namespace) -> dict[str, Any]:
    where = f"{src} row {index + 1}"
    for col in (cols.question_col, cols.answer_col):
        if row.get(col) in (None, ""):
            raise ValueError(f"{where}: no {col!r} field (set --{col.replace('_', '-')}-col?)")
    question, answer = str(row[cols.question_col]).strip(), row[cols.answer_col]
    choices = parse_choices(row.get(cols.choices_col))
    if choices:
        options = "\n".join(f"{letter}. {c}" for letter, c in zip(string.ascii_uppercase, choices))
        prompt, answer, domain = f"{question}\nOptions:\n{options}", choice_letter(answer, choices, where), "multiple_choice"
    else:
        prompt, domain = question, "numeric" if _is_number(answer) else "exact"
        answer = float(answer) if domain == "numeric" else str(answer)
    record: dict[str, Any] = {"id": str(row.get(cols.id_col) or f"{src.stem}-{index:05d}"), "task": src.stem,
                              "domain": cols.domain or domain, "prompt": f"{prompt}\n{BOX_HINT}", "answer": answer}
    if row.get(cols.image_col):
        image = (src.parent / str(row[cols.image_col])).resolve()
        if not image.is_file():
            raise ValueError(f"{where}: image {image} does not exist")
        record["images"] = [os.path.relpath(image, out_dir.resolve())]
    return record


def convert(src: str | Path, out: str | Path, cols: argparse.Namespace) -> int:
    src, out = Path(src), Path(out)
    if cols.domain is not None and cols.domain not in DOMAINS:
        raise ValueError(f"--domain {cols.domain!r}: known domains are {sorted(DOMAINS)}")
    records = [convert_row(row, i, src, out.parent, cols) for i, row in enumerate(read_rows(src))]
    if not records:
        raise ValueError(f"{src} holds no rows")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r) + "\n" for r in records))
    return len(records)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="thinkcap eval convert", description=__doc__.splitlines()[0].strip("`"))
    p.add_argument("src", type=Path, help="VQA file: .jsonl or .csv")
    p.add_argument("out", type=Path, help="output JSONL in the training record format")
    p.add_argument("--image-col", default="image", help="column with the image path (default: image)")
    p.add_argument("--question-col", default="question", help="column with the question (default: question)")
    p.add_argument("--choices-col", default="choices",
                   help="column with the options: a list, a JSON list or 'a|b|c' (default: choices)")
    p.add_argument("--answer-col", default="answer", help="column with the answer (default: answer)")
    p.add_argument("--id-col", default="id", help="column with a unique id (default: id; else SRC-stem-N)")
    p.add_argument("--domain", default=None, help=f"force one verifier domain: {', '.join(sorted(DOMAINS))}")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        n = convert(args.src, args.out, args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"thinkcap eval convert: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {n} records to {args.out}")
    return 0
