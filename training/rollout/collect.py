"""One step's rollouts: draw prompts, sample G each under the budget, reward, and refill the batch
while dynamic sampling leaves too few informative groups (verl's `filter_groups`).

Every rank draws the same global prompt list (same curriculum RNG) and takes its slice
`drawn[rank::world]`. After each round the ranks agree (all-reduce) whether any rank still has
fewer than `prompts_per_step / world` informative groups; if so all draw again, prompts not yet
used this step, until full or `max_refill_rounds` extra rounds are spent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from budget import BudgetParams, ThinkProfile
from training import dist
from training.config import GRPOConfig
from training.curriculum import Curriculum, DynamicSampling
from tasks.records import Record
from tasks.running_sums import TASK as RUNNING_SUM, thought_form
from training.prompts import PromptEncoder
from training.rollout.anytime import anytime_credit, sample_answers
from training.rollout.budget_sampling import BudgetDistribution, budget_advantages, draw_budgets
from training.rollout.form_exploration import Opening, forced_slots, form_choices, opened_prompt, openings
from training.learner.grpo import advantages_of
from scoring.response import Response
from scoring.rewards import RewardFn
from training.rollout.generate import ANYTIME_STREAM, ROUND_STREAM, request_seeds, step_key
from training.rollout.samples import Sample, rollout_params, to_sample


@dataclass
class Collected:
    records: list[Record] = field(default_factory=list)  # this rank's groups, in order
    # G rollouts per group (`anytime_cuts` adds answer samples, `cut` set; `form_credit` one-token
    # form choices, `form_choice` set); s.group indexes `records`
    samples: list[Sample] = field(default_factory=list)
    valid: list[bool] = field(default_factory=list)  # per group: rewards not all equal
    drawn: int = 0  # prompts drawn over all ranks and rounds
    rounds: int = 0

    def kept(self, local_prompts: int, dynamic: bool) -> list[int]:
        """Groups to train on: informative ones (all when dynamic sampling is off), at most
        `local_prompts`, at least one so every rank runs the same number of backward passes."""
        keep = [g for g, ok in enumerate(self.valid) if ok or not dynamic]
        return (keep or [0])[:local_prompts]


@dataclass
class RolloutContext:
    cfg: GRPOConfig
    engine: Any
    encode: PromptEncoder
    profile: ThinkProfile
    tokenizer: Any
    reward_fns: dict[str, RewardFn]
    params: BudgetParams  # the fixed budget's BudgetParams: generation and replay use this one object
    budget: int
    rank: int
    world: int
    device: torch.device
    drawn: BudgetDistribution | None = None  # rollout_budget_choices: a budget drawn per group / sample

    def params_for(self, budget: int) -> BudgetParams:
        """A drawn budget's own BudgetParams, shrunk to fit max_new_tokens as the fixed one is."""
        return rollout_params(budget, self.cfg, self.profile)


def collect(ctx: RolloutContext, step: int, curriculum: Curriculum, oversampling: DynamicSampling) -> Collected:
    cfg, world = ctx.cfg, ctx.world
    local_prompts = cfg.prompts_per_step // world
    out = Collected()
    used: set[str] = set()
    draw = oversampling.num_to_draw(cfg.prompts_per_step)
    results: list[tuple[str, list[bool]]] = []
    for round_ in range(1 + (cfg.max_refill_rounds if cfg.dynamic_sampling else 0)):
        drawn = curriculum.sample(draw, exclude=used)
        if not drawn:
            break
        used.update(r.id for r in drawn)
        out.drawn += len(drawn)
        out.rounds = round_ + 1
        mine = drawn[ctx.rank::world]
        results += _roll(ctx, step, round_, mine, out)
        short = dist.all_max(max(0, local_prompts - sum(out.valid)), world, ctx.device)
        if not short or not cfg.dynamic_sampling:
            break
        # Draw for the neediest rank, expanded by the observed share of informative groups.
        rate = max(sum(dist.all_sum([sum(out.valid)], world, ctx.device)) / out.drawn, 1 / cfg.max_oversample)
        draw = math.ceil(short * world / rate)
    curriculum.update([res for part in dist.gather(results, world) for res in part])  # identical on every rank
    valid_total = sum(dist.all_sum([sum(out.valid)], world, ctx.device))
    oversampling.update(1.0 - valid_total / out.drawn)
    return out


def _roll(ctx: RolloutContext, step: int, round_: int, mine: list[Record], out: Collected) -> list[tuple[str, list[bool]]]:
    """Generate, score and add this rank's groups of one round; (record id, passes) per group."""
    cfg = ctx.cfg
    if not mine:
        # Still call the engine: the ranks of a tensor-parallel vLLM engine generate together, so a
        # rank without prompts this round must join its group's call (it gets nothing back).
        ctx.engine.generate([], cfg.group_size, temperature=cfg.temperature, top_p=cfg.top_p,
                            max_tokens=cfg.max_new_tokens, budget=None, seeds=[])
        if cfg.anytime_cuts:  # and the answer calls at cuts
            sample_answers(ctx, [], [], 0)
        return []
    # vLLM seeds sample k of a request with seed + k: space the requests' seeds G apart so that
    # no two samples of a step share a random stream.
    seeds = request_seeds(step_key(cfg.seed, step, round_ * ROUND_STREAM), len(mine), cfg.group_size, ctx.rank, ctx.world)
    base = len(out.records)
    G = cfg.group_size
    if ctx.drawn is None:
        params = [[ctx.params] * G for _ in mine]
    else:
        drawn = draw_budgets(ctx.drawn, len(mine), G, cfg.rollout_budget_per,
                             f"{cfg.seed}-{step}-{round_}-{ctx.rank}")
        params = [[ctx.params_for(b) for b in row] for row in drawn]  # one BudgetParams per sample
    budgets = [[ctx.budget if ctx.drawn is None else p.think_budget for p in row] for row in params]
    # With a budget hint each sample's prompt shows the budget the engine enforces on it.
    prompts = [[ctx.encode(r, p.think_budget) for p in row] for r, row in zip(mine, params)]  # [N][G]
    opened = _open_forms(ctx, mine, prompts, params) if cfg.form_exploration else [[None] * G for _ in mine]
    if any(o is not None for row in opened for o in row):  # prompts differ within a group: one request each
        groups = _generate_drawn(ctx, prompts, params, seeds, per_sample=True)
    elif ctx.drawn is None:
        groups = ctx.engine.generate([row[0] for row in prompts], G, temperature=cfg.temperature, top_p=cfg.top_p,
                                     max_tokens=cfg.max_new_tokens, budget=ctx.params if cfg.forced_answering else None,
                                     seeds=seeds)
    else:
        groups = _generate_drawn(ctx, prompts, params, seeds)
    samples = []
    for g, group in enumerate(groups):
        for k, c in enumerate(group):
            o = opened[g][k]
            b = budgets[g][k]
            own = b if o is None or b is None else max(0, b - o.num_tokens)  # the opening is thinking too
            s = to_sample(c, base + g, prompts[g][k], ctx.profile, params[g][k], own, cfg.forced_answering)
            s.think_budget = b
            if o is not None:
                s.opened = o.form
                s.num_thinking_tokens += o.num_tokens
            samples.append(s)
    for i, s in enumerate(samples):
        record = mine[s.group - base]
        if s.truncated:  # cut at the budget (forced answering off): the minimum reward
            s.reward = {"reward": cfg.min_reward, "format": 0.0, "accuracy": 0.0}
            continue
        used = params[i // G][i % G] if cfg.forced_answering else None  # what the engine forced with
        response = Response.from_ids(s.response_ids, ctx.profile, ctx.tokenizer, s.prompt.input_ids, used)
        s.text = ctx.tokenizer.decode(s.response_ids, skip_special_tokens=False)
        opening = opened[s.group - base][i % G]
        thinking = response.thinking if opening is None else opening.text + response.thinking
        s.form = thought_form(thinking) if record.task == RUNNING_SUM else None
        s.reward = ctx.reward_fns[record.domain](response, record.answer)
        s.reward = with_budget_terms(s.reward, cfg, s)
    passes = [s.reward["accuracy"] >= cfg.pass_threshold for s in samples]  # the curriculum's pass rule too
    if cfg.anytime_cuts:  # answers at cuts of each thought: its own advantages (training/rollout/anytime.py)
        samples, valid = anytime_credit(ctx, samples, mine, base,
                                        step_key(cfg.seed, step, round_ * ROUND_STREAM + ANYTIME_STREAM))
    elif cfg.form_credit:  # content within the form, choice between forms
        samples, valid = _form_credit(ctx, samples, mine, base, budgets, passes)
    else:
        valid = _group_advantages(cfg, samples, budgets, passes, len(mine))
    out.records += mine
    out.samples += samples
    out.valid += valid
    return [(r.id, passes[g * G:(g + 1) * G]) for g, r in enumerate(mine)]


def _group_advantages(cfg: GRPOConfig, samples: list[Sample], budgets: list[list[Any]], passes: list[bool],
                      n: int, within: bool = False) -> list[bool]:
    """Set each sample's advantage against its group (or same-budget subgroup; `within`: the subgroup
    of samples sharing its key in `budgets`); per group, whether it carries a signal."""
    G = cfg.group_size
    rewards = torch.tensor([s.reward["reward"] for s in samples]).view(n, G)  # [N, G]
    passed = torch.tensor(passes).view(n, G)  # [N, G]
    estimator, scale = cfg.advantage_estimator, cfg.scale_advantages
    if cfg.budget_aware_advantages or within:
        advantages = budget_advantages(rewards, budgets, scale, estimator, passed)  # [N, G]
        valid = (advantages.abs().sum(dim=1) > 0).tolist()  # some same-budget subgroup disagrees
    elif estimator == "grpo":
        advantages = advantages_of(rewards, estimator, scale)  # [N, G]
        valid = (rewards.std(dim=1) > 0).tolist()
    else:  # "best": a group whose rewards differ but with no passing sample casts no vote either
        advantages = advantages_of(rewards, estimator, scale, passed)  # [N, G]
        valid = (advantages.abs().sum(dim=1) > 0).tolist()
    for s, adv in zip(samples, advantages.view(-1).tolist()):
        s.advantage = adv
    return valid


def _form_credit(ctx: RolloutContext, samples: list[Sample], mine: list[Record], base: int,
                 budgets: list[list[int | None]], passes: list[bool]) -> tuple[list[Sample], list[bool]]:
    """`form_credit`: each sample (opened ones too) gets its advantage against the samples of its own
    form under its budget, and the one-token form choices (`form_exploration.form_choices`) are added.
    A sample with no form (no thought, or cut at the budget) keeps its advantage against its whole
    budget subgroup, as without form_credit: skipping or overrunning the thought stays pushed down.
    Returns the samples with the choices appended, and per group whether it carries a signal (a group
    whose forms differ does, even when every sample equals the rest of its form)."""
    cfg, G, n = ctx.cfg, ctx.cfg.group_size, len(mine)
    forms = [s.opened or s.form for s in samples]
    _group_advantages(cfg, samples, budgets, passes, n, within=True)
    whole = [s.advantage for s in samples]
    keys = [[(b, f) for b, f in zip(row, forms[g * G:(g + 1) * G])] for g, row in enumerate(budgets)]
    _group_advantages(cfg, samples, keys, passes, n, within=True)
    for s, f, a in zip(samples, forms, whole):
        s.advantage = a if f is None else s.advantage
    choices = form_choices(ctx.encode, mine, base, samples, cfg.form_credit, ctx.profile, ctx.tokenizer)
    chosen = {c.group for c in choices}
    valid = [base + g in chosen or any(s.advantage != 0 for s in samples[g * G:(g + 1) * G]) for g in range(n)]
    return samples + choices, valid


def with_budget_terms(reward: dict[str, float], cfg: GRPOConfig, s: Sample) -> dict[str, float]:
    """The reward with the budget's length terms: `forced_close_penalty` when the budget cut the
    thought (LCPO-max where the budget is enforced) and `budget_length_coef` x |thinking tokens -
    budget| (LCPO-Exact: the budget as a target length; on passing samples only with
    `budget_length_passed_only`). Each term is also logged by its name."""
    out = dict(reward)
    if cfg.forced_close_penalty and s.answer_forced:  # the thought did not fit its budget
        out["forced_close"] = -cfg.forced_close_penalty
        out["reward"] -= cfg.forced_close_penalty
    passed = reward.get("accuracy", 0.0) >= cfg.pass_threshold
    if cfg.budget_length_coef and s.think_budget is not None and (passed or not cfg.budget_length_passed_only):
        out["length_miss"] = -cfg.budget_length_coef * abs(s.num_thinking_tokens - s.think_budget)
        out["reward"] += out["length_miss"]
    return out


def _generate_drawn(ctx: RolloutContext, prompts: list[list[Any]], params: list[list[BudgetParams]],
                    seeds: list[int], per_sample: bool = False) -> list[list[Any]]:
    """Rollouts under drawn budgets. One budget per group: one request of G samples per prompt. One
    per sample (or `per_sample`: the prompts of a group differ): G requests of one sample each,
    sample k seeded seed + k as vLLM seeds the k-th of n."""
    cfg, G = ctx.cfg, ctx.cfg.group_size
    kw = {"temperature": cfg.temperature, "top_p": cfg.top_p, "max_tokens": cfg.max_new_tokens}
    if cfg.rollout_budget_per == "group" and not per_sample:
        return ctx.engine.generate([row[0] for row in prompts], G, budget=[row[0] for row in params], seeds=seeds, **kw)
    budget = [b for row in params for b in row] if cfg.forced_answering or ctx.drawn is not None else None
    rows = ctx.engine.generate([p for row in prompts for p in row], 1, seeds=[s + k for s in seeds for k in range(G)],
                               budget=budget, **kw)
    return [[c for row in rows[g * G:(g + 1) * G] for c in row] for g in range(len(prompts))]


def _open_forms(ctx: RolloutContext, mine: list[Record], prompts: list[list[Any]],
                params: list[list[BudgetParams]]) -> list[list[Opening | None]]:
    """`form_exploration`: the last samples of each group start their thought in a given form (the
    opening appended to the prompt, the engine budget shortened by it). Edits `prompts` and `params`
    in place; returns each sample's opening or None."""
    G = ctx.cfg.group_size
    out: list[list[Opening | None]] = []
    for g, record in enumerate(mine):
        forms = openings(record, ctx.tokenizer)
        if not forms:
            raise ValueError(f"form_exploration needs a task whose thoughts have forms (running_sum); record "
                             f"{record.id!r} (task {record.task!r}) has none: set form_exploration to 0")
        row: list[Opening | None] = []
        for k, slot in enumerate(forced_slots(G, ctx.cfg.form_exploration, len(forms))):
            if slot is None:
                row.append(None)
                continue
            o, p = forms[slot], params[g][k]
            prompts[g][k] = opened_prompt(ctx.encode, record, p.think_budget, o, ctx.profile, ctx.tokenizer)
            if p.think_budget is not None:
                params[g][k] = replace(p, think_budget=max(0, p.think_budget - o.num_tokens))
            row.append(o)
        out.append(row)
    return out
