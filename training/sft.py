"""A short supervised warm-up on the response format, so a random-weight model can be RL-trained.

GRPO needs samples that sometimes earn a reward; random weights never write
`<think>...</think><answer><|begin_of_box|>...<|end_of_box|></answer>`. This teaches the layout on
demonstrations with templated thinking of a chosen length (long thinking makes the budget bite, which
is what forced answering is about). With `answer_noise`, a share of demonstrations carry a random
answer, so the warmed-up model knows the format but not yet the task: RL has something to learn.
With `budget_hint` + `hint_budgets` (training/sft_config.py) every prompt carries the budget hint at a
drawn budget that has nothing to do with the thought, so RL starts from a model that has seen the hint
but not yet learnt to follow it. `python -m training.sft --help` lists every setting.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch

from budget.hint import write_policy_hint
from tasks.records import Record
from tasks.running_sums import worked_thought
from training import config_load
from training.checkpoint import save_policy
from training.config_load import ConfigError
from training.learner.grpo import aggregate
from training.learner.policy import SequenceLogprobs, collate, load_policy, token_logprobs
from training.prompts import PromptEncoder
from training.rollout.samples import Outcome, Sample
from training.sft_config import PATH_FIELDS, PROG, SFTConfig

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


@dataclass
class Demo:
    """One supervised example: the record, the response text to imitate, the budget its prompt's hint names."""

    record: Record
    text: str
    budget: int | None  # None: the prompt carries no hint


def demonstration_batches(records: list[Record], cfg: SFTConfig) -> Iterator[list[Demo]]:
    """Endless batches of demonstrations, seeded by `cfg.seed`.

    The hinted budgets come from their own random stream, one draw per demonstration: the draw never
    looks at the thought (its length or form), and turning the hint on leaves the records, thoughts
    and answers exactly as they were without it (same seed, same demonstrations)."""
    rng = random.Random(cfg.seed)
    hint_rng = random.Random(f"sft-hint-{cfg.seed}")
    budgets = cfg.budgets()
    sentences = (cfg.think_sentences_min, cfg.think_sentences_max)
    while True:
        batch = []
        for record in rng.sample(records, min(cfg.batch_size, len(records))):
            budget = hint_rng.choice(budgets) if budgets else None
            short = cfg.short_thoughts
            if cfg.form_follows_hint and budget is not None:  # the diagnostic cold start: form by hint
                short = 1.0 if budget < cfg.form_follows_hint else 0.0
            text = demonstration(record, rng, sentences, cfg.answer_noise, short)
            batch.append(Demo(record, text, budget))
        yield batch


def warm_up(cfg: SFTConfig) -> Path:
    """Fine-tune on demonstrations (response tokens only, EOS included); save a servable folder in
    `cfg.output_dir` (recording `cfg.budget_hint` when set) and return it."""
    from tqdm.auto import tqdm
    from transformers import AutoProcessor

    from tasks.records import load_records
    from training.train import resolve_model

    if not cfg.train_data:
        raise ConfigError("train_data is required: pass DATA (or --train-data, or train_data: in the YAML)")
    records = load_records(cfg.train_data)
    if not records:
        raise ConfigError(f"train_data {cfg.train_data} holds no records")
    model_dir = resolve_model(cfg.model)
    torch.manual_seed(cfg.seed)
    processor = AutoProcessor.from_pretrained(model_dir)
    tokenizer = processor.tokenizer
    encode = PromptEncoder(processor, cfg.hint())  # SFTConfig: a hint always comes with budgets to show
    model = load_policy(str(model_dir)).train()
    scorer = SequenceLogprobs(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    # Cosine: at a constant rate the running-sum loss plateaus with the totals still half wrong
    # (held-out accuracy 0.26 after 400 steps at 3e-3; 0.97 after 1200 cosine steps).
    factor = partial(cosine_lr, steps=cfg.steps) if cfg.lr_schedule == "cosine" else (lambda step: 1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    eos = tokenizer.eos_token_id
    losses: list[float] = []
    batches = demonstration_batches(records, cfg)
    bar = tqdm(total=cfg.steps, desc="sft warm-up", disable=not cfg.progress_bar, dynamic_ncols=True)
    for _ in range(cfg.steps):
        rows = []
        for demo in next(batches):
            ids = tokenizer.encode(demo.text, add_special_tokens=False) + [eos]
            rows.append(Sample(group=0, prompt=encode(demo.record, demo.budget), response_ids=ids,
                               loss_mask=[1] * len(ids), num_thinking_tokens=0, outcome=Outcome.STOPPED))
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
    out = save_policy(model.to(torch.bfloat16), cfg.output_dir, model_dir)  # bf16 like the base model
    (out / "warmup_loss.txt").write_text("\n".join(f"{x:.4f}" for x in losses) + "\n")
    if cfg.hint() is not None:  # `thinkcap serve OUT` then hints as this model was trained
        write_policy_hint(out, cfg.hint())
    return out


def build_cli() -> argparse.ArgumentParser:
    """Every SFTConfig field as a flag, plus the positionals and the `--no-progress` spelling of before."""
    parser = config_load.build_parser(SFTConfig, PROG)
    parser.usage = f"{PROG} [CONFIG.yaml] [DATA OUT] [--field value ...]"
    parser.description = __doc__.splitlines()[0]
    parser.add_argument("-h", "--help", action="help", help="show this help and exit")
    parser.add_argument("paths", nargs="*", metavar="[CONFIG.yaml] [DATA OUT]",
                        help="an optional YAML of config fields, then the records (train_data) and the output "
                        "folder (output_dir); flags override both")
    parser.add_argument("--no-progress", dest="progress_bar", action="store_const", const=False,
                        help="no progress bar (same as --progress-bar false)")
    return parser


def load_config(argv: list[str]) -> SFTConfig:
    """The SFTConfig of a command line (ConfigError with what to change)."""
    flags = vars(build_cli().parse_intermixed_args(argv))
    paths = list(flags.pop("paths", None) or [])
    yaml_path = paths.pop(0) if paths and paths[0].endswith((".yaml", ".yml")) else None
    if len(paths) not in (0, 2):
        raise ConfigError(f"expected DATA OUT (records and output folder) after the optional CONFIG.yaml; got {paths}")
    for name, value in zip(("train_data", "output_dir"), paths):
        if name in flags:
            raise ConfigError(f"{name} given twice: as a positional and as --{name.replace('_', '-')}; keep one")
        flags[name] = value
    return config_load.merge(SFTConfig, yaml_path, flags, path_fields=PATH_FIELDS)


def main(argv: list[str] | None = None) -> int:
    try:
        cfg = load_config(sys.argv[1:] if argv is None else argv)
        out = warm_up(cfg)
    except (ValueError, OSError) as err:  # ConfigError, unreadable records: one line, no traceback
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    print(f"warmed-up model in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
