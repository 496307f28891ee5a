"""A text task where thinking pays: add up labelled digits, writing the running total in the thought.

    Add up: a=3 b=5 c=2 d=7 e=1. Think step by step, then put the final answer in <|begin_of_box|><|end_of_box|>.
    <think> a 3 b 8 c 10 d 17 e 18</think><answer><|begin_of_box|>18<|end_of_box|></answer>

Each thought step is one small lookup (the digit after `b=` in the prompt) plus one addition to the
last total, which a tiny transformer learns in minutes; the whole sum of 4-8 digits in one token is
far beyond it. So accuracy depends on how much of the thought the budget lets the model write: the
running total after k steps is the answer only when k is the last step (about 2-3 tokens per step,
8-24 thinking tokens in all). The generator knows every total, so it also writes the worked thought
that cold-start SFT imitates (`worked_thought`).
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

TASK = "running_sum"
LABELS = "abcdefgh"
HINT = "Think step by step, then put the final answer in <|begin_of_box|><|end_of_box|>."
_ITEM = re.compile(r"\b([a-h])=(\d)\b")


def make_record(rng: random.Random, index: int, items: tuple[int, int] = (4, 8)) -> dict[str, Any]:
    digits = [rng.randint(1, 9) for _ in range(rng.randint(*items))]
    listed = " ".join(f"{LABELS[i]}={d}" for i, d in enumerate(digits))
    return {"id": f"{TASK}-{index:05d}", "task": TASK, "domain": "counting",
            "prompt": f"Add up: {listed}. {HINT}", "answer": sum(digits)}


def make_arith_dataset(out_dir: str | Path, n: int = 600, seed: int = 0, items: tuple[int, int] = (4, 8)) -> Path:
    """Write `n` running-sum records to OUT/train.jsonl (text only); same seed, same file."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    path = out / "train.jsonl"
    path.write_text("".join(json.dumps(make_record(rng, i, items)) + "\n" for i in range(n)))
    return path


def _prompt_text(record: Any) -> str:
    content = record.messages[-1]["content"]
    if isinstance(content, str):
        return content
    return " ".join(part.get("text", "") for part in content if isinstance(part, dict))


def worked_thought(record: Any) -> str | None:
    """The correct step-by-step thought for a running-sum record (`a 3 b 8 c 10 ...`); None for any
    other task, whose demonstrations keep their templated thinking."""
    if getattr(record, "task", None) != TASK:
        return None
    total, steps = 0, []
    for label, digit in _ITEM.findall(_prompt_text(record)):
        total += int(digit)
        steps.append(f"{label} {total}")
    return " ".join(steps)
