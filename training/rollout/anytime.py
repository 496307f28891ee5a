"""`anytime_cuts`: answers from cut thoughts (AnytimeReasoner, Qi et al. 2025) as a training arm.

Each rollout thinks under `rollout_think_budget` as usual. Its thought is also cut at every budget of
`anytime_cuts` below its own length: the closing sequence is appended there, exactly as `thinkcap serve`
forces it at that budget, and `anytime_answers` answers are sampled from each cut (one request per cut,
so a prefix-caching engine reads the thought once). Every cut is scored with the task's reward, so a
thought is credited with how good it is wherever it is stopped:

    r(τ, b)   mean reward of the answers at cut b (a cut at or past the thought's end is its own ending)
    R(τ)      mean of r(τ, b) over the cuts and the rollout budget itself
    thought   tokens up to the answer: advantage of R(τ) against the group's other thoughts
    answers   each answer: advantage against the other answers from the same prefix

So the thinking gets dense credit from every cut, and the answer learns to make the best of a cut
thought (it has the rest of `max_new_tokens` to finish what the thought started). A rollout becomes
several samples for the loss: its thought (the whole rollout with its answer masked; the forced closing
stays masked, as always) and one sample per answer, whose prompt is the record's prompt plus the prefix
and closing sequence (not trained).
Answer samples with zero advantage carry no gradient and are left out of the update; with one answer
per prefix (`anytime_answers` 1) only the thoughts are trained.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch

from budget import BudgetParams, ThinkProfile, replay
from budget.cuts import Cut, plan_cuts
from scoring.response import Response
from training.learner.grpo import advantages_of
from training.rollout.generate import request_seeds
from training.rollout.samples import Completion, Outcome, Sample, ended

OWN_STREAM = 5_003  # seed keys of the answers at rollouts' own endings, apart from those at cuts


def parse_cuts(text: str) -> list[int]:
    """'4,8,16' -> [4, 8, 16]: sorted, distinct, each >= 0; [] for an empty string."""
    if not text.strip():
        return []
    try:
        cuts = sorted({int(c) for c in text.split(",")})
    except ValueError:
        raise ValueError(f"anytime_cuts takes thinking budgets separated by commas, e.g. '4,8,16'; got {text!r}") from None
    if cuts[0] < 0:
        raise ValueError(f"anytime_cuts must be >= 0; got {text!r}")
    return cuts


@dataclass
class Prefix:
    """Where the answers of one or more cuts of a thought start: the response ids before the answer."""

    thought: int  # index of the rollout in the round's samples
    cuts: list[int]  # the cuts answered from here (all cuts at or past the thought's end share one)
    ids: list[int]  # the thought up to the cut, then the closing sequence
    params: BudgetParams  # replays `ids` with the closing sequence forced where the engine forces it
    own: bool = False  # the rollout's own ending: its answer is the first of `answers`
    answers: list[Completion] = field(default_factory=list)
    rewards: list[dict[str, float]] = field(default_factory=list)


def prefixes(i: int, s: Sample, cuts: list[int], params: BudgetParams, profile: ThinkProfile) -> list[Prefix]:
    """The prefixes of rollout `i` (rolled out under `params`): one per cut below its thought's length,
    and its own ending (the whole thought, closed by the model or forced) for the cuts at or past it and
    the rollout budget. A thought that never closed (EOS or max tokens inside it) has no ending to answer
    from: those cuts score as the rollout itself."""
    state = replay(profile, params, s.prompt.input_ids, s.response_ids)
    start = state.think_start
    # The rule `thinkcap eval --ladder` and the demo's Compare cut by: below the thought's length a
    # budget keeps its first `budget` tokens, at or past it the whole thought and its own answer.
    plan = plan_cuts([*cuts, params.think_budget], state.num_thinking_tokens, state.answer_forced) \
        if start is not None else [Cut(b, 0, False, False) for b in [*cuts, params.think_budget]]
    out = [Prefix(i, [c.budget], s.response_ids[: start + c.budget] + list(profile.closing_ids),
                  BudgetParams(think_budget=c.budget)) for c in plan if c.cut]
    if state.answer_start is not None:
        own = Prefix(i, [c.budget for c in plan if not c.cut], s.response_ids[: state.answer_start], params, own=True)
        own.answers.append(Completion(s.prompt.input_ids, s.response_ids[state.answer_start:],
                                      "length" if s.outcome is Outcome.LENGTH else "stop",
                                      s.engine_logprobs[state.answer_start:] if s.engine_logprobs else None))
        own.rewards.append(s.reward)
        out.append(own)
    return out


def sample_answers(ctx: Any, rollouts: list[Sample], found: list[Prefix], seed_key: int) -> None:
    """Add answers to each prefix until it has `anytime_answers` (a rollout's own ending already holds
    its own answer): one engine request per prefix, prompt = rollout prompt + prefix ids, under the
    prefix's own params, so an answer may not be empty (`answer_required`) as when served. Every rank
    makes both calls, with prompts or without: a tensor-parallel engine's ranks generate together."""
    cfg = ctx.cfg
    for own in (False, True):
        n = cfg.anytime_answers - own
        if n < 1:
            continue  # one answer per prefix: the own endings have theirs (the same on every rank)
        batch = [p for p in found if p.own is own]
        # One request per prefix, each given what max_new_tokens leaves after it (as the rollout's own
        # answer was): generated to the most any needs, then each cut to its own room, which is what a
        # per-request limit gives (the tokens before a limit do not depend on it).
        most = max((cfg.max_new_tokens - len(p.ids) for p in batch), default=1)
        got = ctx.engine.generate([rollouts[p.thought].prompt.extended(p.ids) for p in batch], n,
                                  temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=max(1, most),
                                  budget=[p.params for p in batch],
                                  seeds=request_seeds(seed_key + own * OWN_STREAM, len(batch), cfg.anytime_answers,
                                                      ctx.rank, ctx.world))
        for p, group in zip(batch, got, strict=True):
            p.answers += [_within(c, cfg.max_new_tokens - len(p.ids)) for c in group]


def _within(c: Completion, room: int) -> Completion:
    if len(c.token_ids) <= room:
        return c
    return replace(c, token_ids=c.token_ids[:room], finish_reason="length",
                   engine_logprobs=c.engine_logprobs[:room] if c.engine_logprobs else None)


def score_answers(ctx: Any, rollouts: list[Sample], found: list[Prefix], record_of: Any) -> None:
    """Each new answer's reward: the whole response (prefix + answer) split by the id-level parse with
    the params that force the prefix's closing, then the record's reward, as a served answer is judged."""
    for p in found:
        s = rollouts[p.thought]
        record = record_of(s)
        for c in p.answers[len(p.rewards):]:
            response = Response.from_ids(p.ids + c.token_ids, ctx.profile, ctx.tokenizer, s.prompt.input_ids, p.params)
            p.rewards.append(ctx.reward_fns[record.domain](response, record.answer))


def credit(ctx: Any, rollouts: list[Sample], found: list[Prefix], cuts: list[int], G: int) -> tuple[list[Sample], list[bool]]:
    """The loss samples of a round (thought parts, then answers with an advantage) and, per group,
    whether anything in it has an advantage. Rewrites the rollouts' `reward` with the anytime score and
    per-cut accuracy (logged as reward components); their `reward["reward"]` stays their own."""
    cfg = ctx.cfg
    by_thought: dict[int, list[Prefix]] = {}
    for p in found:
        by_thought.setdefault(p.thought, []).append(p)
    scores = []
    for i, s in enumerate(rollouts):
        per_cut = {}
        for b in cuts + [s.think_budget]:
            at = next((p for p in by_thought.get(i, []) if b in p.cuts), None)
            rewards = at.rewards if at is not None else [s.reward]  # never closed: the rollout's own score
            per_cut[b] = (_mean([r["reward"] for r in rewards]), _mean([r.get("accuracy", 0.0) for r in rewards]))
        score = _mean([r for r, _ in per_cut.values()])
        s.reward = {**s.reward, "anytime_score": score,
                    **{f"cut{b}_accuracy": acc for b, (_, acc) in per_cut.items() if b in cuts}}
        scores.append(score)
    R = torch.tensor(scores).view(-1, G)  # [N, G]
    passed = torch.tensor([s.reward.get("accuracy", 0.0) >= cfg.pass_threshold for s in rollouts]).view(-1, G)  # [N, G]
    thought_adv = advantages_of(R, cfg.advantage_estimator, cfg.scale_advantages, passed).view(-1).tolist()
    out: list[Sample] = []
    valid = [False] * (len(rollouts) // G)
    for i, (s, adv) in enumerate(zip(rollouts, thought_adv)):
        # The whole rollout, its answer masked: the answer is trained as one of its ending's answers.
        own = next((p for p in by_thought.get(i, []) if p.own), None)
        end = len(own.ids) if own is not None else len(s.response_ids)
        out.append(replace(s, loss_mask=s.loss_mask[:end] + [0] * (len(s.response_ids) - end), advantage=adv))
        valid[i // G] |= adv != 0
    full = [p for p in found if len(p.answers) == cfg.anytime_answers]
    if cfg.anytime_answers > 1 and full:
        rewards = torch.tensor([[r["reward"] for r in p.rewards] for p in full])  # [P, M]
        answer_adv = advantages_of(rewards, "grpo", cfg.scale_advantages).tolist()  # [P][M]
        for p, advs in zip(full, answer_adv):
            s = rollouts[p.thought]
            for k, (c, r, adv) in enumerate(zip(p.answers, p.rewards, advs)):
                if adv == 0:
                    continue  # no gradient: left out of the update
                # The rollout's own answer keeps its mask; new answers ran without a budget: all free.
                mask = s.loss_mask[len(p.ids):] if p.own and k == 0 else [1] * len(c.token_ids)
                out.append(Sample(group=s.group, prompt=s.prompt.extended(p.ids), response_ids=c.token_ids,
                                  loss_mask=mask, num_thinking_tokens=0,
                                  outcome=ended(c),
                                  engine_logprobs=c.engine_logprobs, think_budget=p.cuts[0], reward=r,
                                  advantage=adv, cut=p.cuts[0]))
                valid[p.thought // G] = True
    return out, valid


def anytime_credit(ctx: Any, rollouts: list[Sample], mine: list[Any], base: int, seed_key: int) -> tuple[list[Sample], list[bool]]:
    """One round's rollouts (scored, `G` per group in order) -> loss samples and per-group validity."""
    cuts = parse_cuts(ctx.cfg.anytime_cuts)
    found = [p for i, s in enumerate(rollouts) for p in prefixes(i, s, cuts, ctx.params, ctx.profile)]
    sample_answers(ctx, rollouts, found, seed_key)
    score_answers(ctx, rollouts, found, lambda s: mine[s.group - base])
    return credit(ctx, rollouts, found, cuts, ctx.cfg.group_size)


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)
