"""Which thought form a running-sum policy writes, by problem size and by the budget its hint shows.

    python -m benches.forms runs/e20/best-policy runs/e20/held_out/train.jsonl --hints 8,16,32
    python -m benches.forms runs/i38/sft runs/i38/held_out/train.jsonl --hints 12,16,32 --opened

Greedy (HF generate, no budget enforced: the form is decided in the first thought tokens) on the
policy's own prompt with its recorded hint (`thinkcap_policy.json`) at each budget. Prints, per hint,
short-form thoughts / records for each number of terms in the sum. A policy that reads its hint
changes its rows with the hint; one that picks its form by the problem has the same row at every hint
(docs/training.md, "The form follows the problem, not the hint").

With `--opened`: accuracy instead, greedy under the budget the hint shows (enforced, answer forced at
it), for the policy's free choice and with its thought opened in each form (`form_exploration`'s
openings): what reading the hint could be worth to this policy at each budget, by problem size. It runs
on the rollout engine the learning bench evaluates with (`--engine auto`: vLLM where importable, bf16);
`--engine hf` (float32) can differ by several points for the same policy.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

from tasks.running_sums import _ITEM, _prompt_text, thought_form

MAX_NEW_TOKENS = 20  # enough for the first steps of either form


def form_table(policy_dir: str, records: list, hints: list[int]) -> dict[int, dict[int, tuple[int, int]]]:
    """{hint: {terms: (short thoughts, records)}} for running-sum `records`."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from budget import build_profile
    from budget.hint import read_policy_hint
    from scoring.response import Response
    from training.prompts import PromptEncoder

    processor = AutoProcessor.from_pretrained(policy_dir)
    model = AutoModelForImageTextToText.from_pretrained(policy_dir).eval()
    _, hint_of = read_policy_hint(policy_dir)  # the hint it was trained with (None: no hint)
    encode = PromptEncoder(processor, hint_of)
    profile = build_profile(processor.tokenizer, model_type=model.config.model_type)
    out: dict[int, dict[int, tuple[int, int]]] = {}
    for hint in hints:
        counts: dict[int, list[int]] = defaultdict(lambda: [0, 0])
        for record in records:
            ids = encode(record, hint).input_ids
            x = torch.tensor([ids])  # [1, P]
            with torch.no_grad():
                y = model.generate(input_ids=x, attention_mask=torch.ones_like(x), max_new_tokens=MAX_NEW_TOKENS,
                                   do_sample=False)  # [1, P + new]
            # The project's one id-level split (the prompt opens the thought; 20 tokens may not close it).
            thought = Response.from_ids(y[0, len(ids):].tolist(), profile, processor.tokenizer, ids).thinking
            terms = len(_ITEM.findall(_prompt_text(record)))
            counts[terms][0] += thought_form(thought) == "short"
            counts[terms][1] += 1
        out[hint] = {k: (v[0], v[1]) for k, v in sorted(counts.items())}
    return out


def opened_table(policy_dir: str, records: list, budgets: list[int],
                 engine_kind: str = "auto") -> dict[int, dict[str, dict[int, float]]]:
    """{budget: {"free" | form: {terms: accuracy, "all": accuracy}}}: greedy, the budget enforced and
    shown in the hint, the thought free or opened in each form, on the rollout engine training uses
    (`engine_kind` as `GRPOConfig.rollout_engine`: auto = vLLM where importable, as the learning bench)."""
    from transformers import AutoProcessor

    from budget import BudgetParams, build_profile
    from budget.hint import read_policy_hint
    from scoring.rewards import build_reward_fns
    from training.config import GRPOConfig
    from training.learner.policy import load_policy
    from training.prompts import PromptEncoder
    from training.rollout.form_exploration import opened_prompt, openings
    from training.rollout.generate import generate_and_score
    from training.train import make_engine

    processor = AutoProcessor.from_pretrained(policy_dir)
    tok = processor.tokenizer
    policy = load_policy(policy_dir)
    profile = build_profile(tok, model_type=policy.config.model_type)
    cfg = GRPOConfig(model=policy_dir, train_data="-", rollout_engine=engine_kind, vllm_log_level="warning")
    engine = make_engine(cfg, policy_dir, policy, profile, processor, 1, records)
    encode = PromptEncoder(processor, read_policy_hint(policy_dir)[1])
    rewards = build_reward_fns()
    sizes = [len(_ITEM.findall(_prompt_text(r))) for r in records]
    forms = [{o.form: o for o in openings(r, tok)} for r in records]  # [R]: each record's openings by form
    out: dict[int, dict[str, dict[int, float]]] = {}
    for budget in budgets:
        out[budget] = {}
        for form in ("free", "long", "short"):
            opened = [f.get(form) for f in forms]  # [R]: None = free
            right: dict[int, list[float]] = defaultdict(list)
            for cut in sorted({o.num_tokens if o else 0 for o in opened}):
                # one batch per opening length: every prompt of a batch runs under one BudgetParams
                mine = [i for i, o in enumerate(opened) if (o.num_tokens if o else 0) == cut]
                prompts = [opened_prompt(encode, records[i], budget, opened[i], profile, tok) if opened[i]
                           else encode(records[i], budget) for i in mine]
                groups = generate_and_score(engine, [records[i] for i in mine], prompts,
                                            params=BudgetParams(think_budget=max(0, budget - cut)), reward_fns=rewards,
                                            profile=profile, tokenizer=tok, n=1, temperature=0.0, top_p=1.0,
                                            max_tokens=budget + 40, seeds=[0] * len(prompts))
                for i, (scored,) in zip(mine, groups):
                    right[sizes[i]].append(scored.score["accuracy"])
            every = [a for v in right.values() for a in v]
            out[budget][form] = {k: sum(v) / len(v) for k, v in sorted(right.items())} | {"all": sum(every) / len(every)}
    return out


def main(argv: list[str] | None = None) -> int:
    from tasks.records import load_records

    p = argparse.ArgumentParser(prog="python -m benches.forms", description=__doc__.splitlines()[0])
    p.add_argument("policy", help="policy folder (a bench's best-policy, a checkpoint's policy/, an SFT folder)")
    p.add_argument("records", help="running-sum records (JSONL), e.g. a bench's held_out/train.jsonl")
    p.add_argument("--hints", default="8,16,32", help="budgets shown in the hint (default 8,16,32)")
    p.add_argument("--limit", type=int, default=0, help="first N records only (default 0 = all)")
    p.add_argument("--opened", action="store_true", help="accuracy under each hinted budget, free and with the "
                   "thought opened in each form, instead of the free choice's form")
    p.add_argument("--engine", default="auto", choices=("auto", "vllm", "hf"),
                   help="--opened: generation engine (default auto: vLLM where importable, as the learning bench)")
    args = p.parse_args(argv)
    records = load_records(args.records)
    records = records[: args.limit] if args.limit else records
    if args.opened:
        for budget, row in opened_table(args.policy, records, [int(h) for h in args.hints.split(",")], args.engine).items():
            cells = [f"{form}: " + " ".join(f"{t}={a:.2f}" for t, a in acc.items()) for form, acc in row.items()]
            print(f"budget {budget}: " + " | ".join(cells))
        return 0
    table = form_table(args.policy, records, [int(h) for h in args.hints.split(",")])
    for hint, row in table.items():
        print(f"hint {hint}: " + "  ".join(f"{terms} terms {s}/{n}" for terms, (s, n) in row.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
