"""A text task where thinking pays: add up labelled digits, writing the running total in the thought.

    Add up: a3 b5 c2 d7 e1. Think step by step, then put the final answer in <|begin_of_box|><|end_of_box|>.
    <think>a3=3 b5=8 c2=10 d7=17 e1=18</think><answer><|begin_of_box|>18<|end_of_box|></answer>

Each thought step is a copy (the digit after `b` in the prompt: an induction head) and one addition
of two nearby tokens (the last total and that digit), which a tiny transformer can learn; the whole
sum of 3-6 digits in one token is far beyond it. So accuracy depends on how much of the thought the
budget lets the model write: the running total is the answer only after the last step (4 tokens per
step, `b` `5` `=` `8`: 12-24 thinking tokens in all). An earlier format without the copied digit
(`a 3 b 8 ...`) was not learned by the tiny model in 400 SFT steps: it never found the digits. The generator knows every total, so it also writes the worked thought
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
_ITEM = re.compile(r"\b([a-h])(\d)\b")


def make_record(rng: random.Random, index: int, items: tuple[int, int] = (3, 6)) -> dict[str, Any]:
    digits = [rng.randint(1, 9) for _ in range(rng.randint(*items))]
    listed = " ".join(f"{LABELS[i]}{d}" for i, d in enumerate(digits))
    return {"id": f"{TASK}-{index:05d}", "task": TASK, "domain": TASK,
            "prompt": f"Add up: {listed}. {HINT}", "answer": sum(digits)}


def make_arith_dataset(out_dir: str | Path, n: int = 600, seed: int = 0, items: tuple[int, int] = (3, 6)) -> Path:
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


def worked_thought(record: Any, short: bool = False) -> str | None:
    """The correct step-by-step thought for a running-sum record: `a3=3 b5=8 c2=10 ...` (4 tokens a
    step), or with `short` only the totals, `a3 b8 c10 ...` (2 tokens a step: the digit is read from the
    prompt, not copied out). None for any other task, whose demonstrations keep their templated thinking."""
    if getattr(record, "task", None) != TASK:
        return None
    total, steps = 0, []
    for label, digit in _ITEM.findall(_prompt_text(record)):
        total += int(digit)
        steps.append(f"{label}{total}" if short else f"{label}{digit}={total}")
    return " ".join(steps)


def form_thoughts(record: Any) -> dict[str, str]:
    """The record's worked thought in each form, {"long": ..., "short": ...}; {} for other tasks.
    `form_exploration` opens some rollouts' thoughts with the first tokens that tell them apart."""
    long, short = worked_thought(record), worked_thought(record, short=True)
    return {} if long is None or short is None else {"long": long, "short": short}


def thought_form(thinking: str) -> str | None:
    """Which of the two forms a running-sum thought is written in: "long" (`a3=3 b5=8`, an `=` per
    step), "short" (`a3 b8`), or None for an empty thought. Logged per budget by training and the
    learning benches: which form a policy writes for which budget is what budget conditioning learns."""
    thinking = thinking.strip()
    if not thinking:
        return None
    return "long" if "=" in thinking else "short"


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tasks.running_sums", description=__doc__.splitlines()[0])
    parser.add_argument("dir", help="output folder (DIR/train.jsonl)")
    parser.add_argument("--n", type=int, default=2000, help="number of records (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0; use another for held-out)")
    args = parser.parse_args(argv)
    print(f"wrote {args.n} records to {make_arith_dataset(args.dir, n=args.n, seed=args.seed)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
