"""A short supervised warm-up on the response format, so a random-weight model can be RL-trained.

GRPO needs samples that sometimes earn a reward; random weights never write
`<think>...</think><answer><|begin_of_box|>...<|end_of_box|></answer>`. This teaches the layout on
demonstrations with templated thinking of a chosen length (long thinking makes the budget bite, which
is what forced answering is about). With `answer_noise`, a share of demonstrations carry a random
answer, so the warmed-up model knows the format but not yet the task: RL has something to learn.
"""

from __future__ import annotations

import math
import random
import sys
from functools import partial
from pathlib import Path
from typing import Any

import torch

from training.checkpoint import save_policy
from tasks.records import Record
from training.prompts import PromptEncoder
from training.learner.grpo import aggregate
from training.learner.policy import SequenceLogprobs, collate, load_policy, token_logprobs
from training.rollout.samples import Sample
from tasks.running_sums import worked_thought

THOUGHTS = [
    "Let me look at the image carefully.", "First, read the question carefully.",
    "Then check every assumption.", "Let us think step by step.", "Wait, let me verify this result once more.",
    "Hmm, that does not look right.", "Look at the left side of the photo.", "Remember to double-check.",
    "The answer is the number I see.", "Therefore the final answer is clear.",
]
ANSWER_SPACE = {"count_shapes": [1, 2, 3, 4, 5], "read_number": list(range(10)),
                "square_motion": ["left", "right", "up", "down"]}


def demonstration(record: Record, rng: random.Random, think_sentences: tuple[int, int], answer_noise: float,
                  short_thoughts: float = 0.0) -> str:
    # Tasks whose generator knows the steps get the correct worked thought (cold-start quality
    # matters most); the others keep templated filler.
    thinking = worked_thought(record, short=short_thoughts > 0 and rng.random() < short_thoughts)
    if thinking is None:
        thinking = " ".join(rng.choice(THOUGHTS) for _ in range(rng.randint(*think_sentences)))
    answer = record.answer
    if rng.random() < answer_noise and record.task in ANSWER_SPACE:
        answer = rng.choice(ANSWER_SPACE[record.task])
    return f"<think>{thinking}</think><answer><|begin_of_box|>{answer}<|end_of_box|></answer>"


def cosine_lr(step: int, steps: int, warmup: float = 0.05, floor: float = 0.1) -> float:
    """Learning-rate factor: linear warm-up over the first `warmup` share, then cosine down to `floor`."""
    ramp = max(1, int(steps * warmup))
    if step < ramp:
        return (step + 1) / ramp
    progress = (step - ramp) / max(1, steps - ramp)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def warm_up(model_dir: str | Path, records: list[Record], out_dir: str | Path, *, steps: int = 150,
            batch_size: int = 16, lr: float = 1e-2, think_sentences: tuple[int, int] = (2, 10),
            answer_noise: float = 0.0, short_thoughts: float = 0.0, lr_schedule: str = "constant", seed: int = 0,
            progress: bool = False) -> Path:
    """Fine-tune on demonstrations (response tokens only, EOS included); save a servable folder.
    `lr_schedule`: "constant" (the short format warm-up) or "cosine" (`cosine_lr`, for a cold start that
    has to learn the task, like the running sum).
    `progress`: a progress bar with the running loss on stderr."""
    from tqdm.auto import tqdm
    from transformers import AutoProcessor

    rng = random.Random(seed)
    torch.manual_seed(seed)
    processor = AutoProcessor.from_pretrained(model_dir)
    tokenizer = processor.tokenizer
    encode = PromptEncoder(processor)
    model = load_policy(str(model_dir)).train()
    scorer = SequenceLogprobs(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    # Cosine: at a constant rate the running-sum loss plateaus with the totals still half wrong
    # (held-out accuracy 0.26 after 400 steps at 3e-3; 0.97 after 1200 cosine steps).
    if lr_schedule not in ("constant", "cosine"):
        raise ValueError(f"lr_schedule must be 'constant' or 'cosine'; got {lr_schedule!r}")
    factor = partial(cosine_lr, steps=steps) if lr_schedule == "cosine" else (lambda step: 1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    eos = tokenizer.eos_token_id
    losses: list[float] = []
    bar = tqdm(total=steps, desc="sft warm-up", disable=not progress, dynamic_ncols=True)
    for _ in range(steps):
        rows = []
        for record in rng.sample(records, min(batch_size, len(records))):
            text = demonstration(record, rng, think_sentences, answer_noise, short_thoughts)
            ids = tokenizer.encode(text, add_special_tokens=False) + [eos]
            rows.append(Sample(0, encode(record), ids, [1] * len(ids), 0, False, False, "stop"))
        batch = collate(rows, tokenizer.pad_token_id)
        loss = aggregate(-token_logprobs(scorer, batch), batch.loss_mask, "token")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
        bar.update(1)
    bar.close()
    out = save_policy(model.to(torch.bfloat16), out_dir, model_dir)  # bf16 like the base model
    (out / "warmup_loss.txt").write_text("\n".join(f"{x:.4f}" for x in losses) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    import argparse

    from tasks.records import load_records

    parser = argparse.ArgumentParser(prog="python -m training.sft", description=__doc__.splitlines()[0])
    parser.add_argument("data", help="JSONL records (synthetic tasks)")
    parser.add_argument("out", help="output model folder")
    parser.add_argument("--model", default="tiny", help="start model (default: the tiny model)")
    parser.add_argument("--steps", type=int, default=150, help="optimizer steps (default 150)")
    parser.add_argument("--batch-size", type=int, default=16, help="demonstrations per step (default 16)")
    parser.add_argument("--lr", type=float, default=1e-2, help="AdamW learning rate (default 1e-2)")
    parser.add_argument("--answer-noise", type=float, default=0.0, help="share of random answers (default 0)")
    parser.add_argument("--lr-schedule", default="constant", choices=("constant", "cosine"),
                        help="constant (default: the format warm-up) or cosine (5 %% warm-up, decay to 10 %%: a cold "
                        "start that learns the task)")
    parser.add_argument("--short-thoughts", type=float, default=0.0, help="running-sum records: share of thoughts "
                        "written as totals only (`a3 b8 c10`) instead of `a3=3 b5=8 c2=10` (default 0)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    from training.train import resolve_model

    try:
        for name in ("steps", "batch_size"):
            if getattr(args, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1; got {getattr(args, name)}")
        for name in ("answer_noise", "short_thoughts"):
            if not 0 <= getattr(args, name) <= 1:
                raise ValueError(f"--{name.replace('_', '-')} must be in [0, 1]; got {getattr(args, name)}")
        records = load_records(args.data)
    except (ValueError, OSError) as err:  # one line, no traceback: the user fixes a setting
        print(f"python -m training.sft: error: {err}", file=sys.stderr)
        return 2
    out = warm_up(resolve_model(args.model), records, args.out, steps=args.steps, batch_size=args.batch_size,
                  lr=args.lr, answer_noise=args.answer_noise, short_thoughts=args.short_thoughts,
                  lr_schedule=args.lr_schedule, seed=args.seed,
                  progress=not args.no_progress)
    print(f"warmed-up model in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
