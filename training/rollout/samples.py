"""Rollouts: G samples per prompt under the thinking budget, turned into loss-ready samples.

Two engines share one interface (`generate`, `load_weights`): the colocated vLLM engine
(training.rollout.vllm_engine) and HF `generate` with `HFThinkBudgetProcessor` (fallback: no vLLM, or
several processes under torchrun). Forced tokens are found afterwards by replaying the budget state
machine over the ids (`budget.replay`): forcing is a pure function of the ids, so both engines
yield the same loss mask without any side channel.
"""

from __future__ import annotations

from collections.abc import Sequence
import enum
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import LogitsProcessorList

from budget import BudgetParams, Phase, ThinkProfile, effective_budget, replay
from training.prompts import EncodedPrompt
from training.rollout.hf_processor import HFThinkBudgetProcessor


@dataclass
class Completion:
    """What an engine returns for one sample."""

    prompt_ids: list[int]
    token_ids: list[int]
    finish_reason: str  # "stop" (EOS) or "length"
    engine_logprobs: list[float] | None = None  # vLLM's logprob of each sampled token


class Outcome(enum.Enum):
    """How a sample ended: the one record of it (no separate finish/forced/truncated flags)."""

    STOPPED = "stop"  # the model ended by itself (EOS) without a forced close
    LENGTH = "length"  # max_new_tokens ran out without a forced close
    FORCED = "forced"  # the budget forced the closing sequence, then the sample answered
    TRUNCATED = "truncated"  # cut at the budget with forced answering off: gets min_reward


@dataclass
class Sample:
    """One rollout sample, as the loss sees it (built by keyword)."""

    group: int  # index of its prompt in this step's batch
    prompt: EncodedPrompt
    response_ids: list[int]
    loss_mask: list[int]  # 1 = trained on; 0 = forced by the budget (not the policy's choice)
    num_thinking_tokens: int
    outcome: Outcome
    engine_logprobs: list[float] | None = None
    think_budget: int | None = None  # the budget this sample was rolled out under (drawn or fixed)
    text: str = ""
    form: str | None = None  # the thought's form where the task names forms (`tasks.running_sums.thought_form`)
    opened: str | None = None  # the form `form_exploration` opened this sample's thought in (None: free)
    cut: int | None = None  # `anytime_cuts`: an answer from the thought cut at this budget (None: a rollout)
    form_choice: bool = False  # `form_credit`: one token, where the forms part (`form_exploration.form_choices`)
    reward: dict[str, float] = field(default_factory=dict)
    advantage: float = 0.0

    @property
    def answer_forced(self) -> bool:
        return self.outcome is Outcome.FORCED

    @property
    def truncated(self) -> bool:
        return self.outcome is Outcome.TRUNCATED


def rollout_budget(think_budget: int | None, max_new_tokens: int, closing_len: int, answer_reserve: int) -> int:
    """Thinking tokens allowed per sample, shrunk so the closing sequence and `answer_reserve` answer
    tokens always fit in `max_new_tokens` (the model writes `<think>` itself: one prefix token)."""
    budget = effective_budget(think_budget, max_new_tokens, closing_len, answer_reserve, prefix_tokens=1)
    assert budget is not None  # max_tokens is set, so the budget is finite
    return budget


def rollout_params(think_budget: int | None, cfg: Any, profile: ThinkProfile) -> BudgetParams:
    """The BudgetParams a rollout at `think_budget` runs under (and is replayed with): the budget
    shrunk by `rollout_budget` to cfg's max_new_tokens and answer_reserve."""
    return BudgetParams(think_budget=rollout_budget(think_budget, cfg.max_new_tokens, len(profile.closing_ids),
                                                    cfg.answer_reserve))


Budgets = BudgetParams | None | Sequence[BudgetParams | None]


def per_prompt(budget: Budgets, n_prompts: int) -> list[BudgetParams | None]:
    """One BudgetParams (or None) per prompt: an engine takes one for all prompts or a list."""
    if budget is None or isinstance(budget, BudgetParams):
        return [budget] * n_prompts
    if len(budget) != n_prompts:
        raise ValueError(f"got {len(budget)} budgets for {n_prompts} prompts")
    return list(budget)


def to_sample(c: Completion, group: int, prompt: EncodedPrompt, profile: ThinkProfile, params: BudgetParams,
              budget: int, forced_answering: bool) -> Sample:
    """Loss mask and thinking statistics of one completion.

    forced_answering: the engine forced the closing sequence with `params` (the very object the
    rollout generated with); replaying it marks exactly those positions. Otherwise the engine ran
    free and we cut the sample where `budget` would have been hit, as an engine without forced
    answering stops generation.
    """
    ids = c.token_ids
    if forced_answering:
        state = replay(profile, params, c.prompt_ids, ids)
        forced = set(state.forced_positions)
        mask = [0 if i in forced else 1 for i in range(len(ids))]
        outcome = Outcome.FORCED if state.answer_forced else ended(c)
        return Sample(group=group, prompt=prompt, response_ids=ids, loss_mask=mask,
                      num_thinking_tokens=state.num_thinking_tokens, outcome=outcome, engine_logprobs=c.engine_logprobs)
    state = replay(profile, BudgetParams(), c.prompt_ids, ids)
    over = state.num_thinking_tokens > budget or (state.phase == Phase.THINKING and c.finish_reason == "length")
    if over and state.think_start is not None:
        cut = min(len(ids), state.think_start + budget)
        ids = ids[:cut]
        logprobs = c.engine_logprobs[:cut] if c.engine_logprobs else None
        return Sample(group=group, prompt=prompt, response_ids=ids, loss_mask=[1] * cut,
                      num_thinking_tokens=min(budget, state.num_thinking_tokens), outcome=Outcome.TRUNCATED,
                      engine_logprobs=logprobs)
    return Sample(group=group, prompt=prompt, response_ids=ids, loss_mask=[1] * len(ids),
                  num_thinking_tokens=state.num_thinking_tokens, outcome=ended(c), engine_logprobs=c.engine_logprobs)


def ended(c: Completion) -> Outcome:
    return Outcome.LENGTH if c.finish_reason == "length" else Outcome.STOPPED


class HFEngine:
    """Rollouts with `model.generate` on the policy itself (so weight sync is a no-op)."""

    def __init__(self, model: torch.nn.Module, profile: ThinkProfile, pad_token_id: int, eos_token_ids: list[int]):
        self.model = model
        self.profile = profile
        self.pad_token_id = pad_token_id
        self.eos_token_ids = eos_token_ids

    def load_weights(self, named_tensors: Any) -> None:
        """A no-op when the engine generates with the trained module itself (the usual case);
        copies the tensors when it was built around another model (an engine reused across runs)."""
        own = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, tensor in named_tensors:
                if own[name] is not tensor:
                    own[name].copy_(tensor)

    def generate(
        self, prompts: list[EncodedPrompt], n: int, *, temperature: float, top_p: float, max_tokens: int,
        budget: Budgets, seeds: list[int],
    ) -> list[list[Completion]]:
        budgets = per_prompt(budget, len(prompts))
        # HF's Glm4v cannot take images and videos in one batch (one placeholder id for both), so
        # each kind of media gets its own generate call.
        kinds: dict[tuple[str, ...], list[int]] = {}
        for i, p in enumerate(prompts):
            kinds.setdefault(tuple(sorted(p.tensors)), []).append(i)
        groups: list[list[Completion]] = [[] for _ in prompts]
        for k, members in enumerate(kinds.values()):
            part = self._generate([prompts[i] for i in members], n, temperature, top_p, max_tokens,
                                  [budgets[i] for i in members], seeds[0] + k)
            for i, group in zip(members, part):
                groups[i] = group
        return groups

    @torch.no_grad()
    def _generate(self, prompts: list[EncodedPrompt], n: int, temperature: float, top_p: float, max_tokens: int,
                  budgets: list[BudgetParams | None], seed: int) -> list[list[Completion]]:
        rows = [p for p in prompts for _ in range(n)]  # each prompt n times in a row, as the groups
        width = max(len(p.input_ids) for p in rows)
        pad = self.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(p.input_ids)) + p.input_ids for p in rows])  # [B, P]
        attention = torch.tensor([[0] * (width - len(p.input_ids)) + [1] * len(p.input_ids) for p in rows])  # [B, P]
        mm_types = torch.tensor([[0] * (width - len(p.input_ids)) + p.mm_token_type_ids for p in rows])  # [B, P]
        row_budgets = [b for b in budgets for _ in range(n)]  # [B]: the rows repeat each prompt n times
        processor = HFThinkBudgetProcessor(self.profile, row_budgets, [p.input_ids for p in rows])
        was_training = self.model.training
        self.model.eval()
        # A seed per call: sampling is reproducible without touching the global RNG, which the
        # checkpoint restores separately.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            out = self.model.generate(
                input_ids=input_ids, attention_mask=attention, mm_token_type_ids=mm_types,
                **concat_media(rows), **sampling_kwargs(temperature, top_p),
                max_new_tokens=max_tokens, logits_processor=LogitsProcessorList([processor]),
                pad_token_id=pad, eos_token_id=self.eos_token_ids,
            )  # [B, P + R]
        self.model.train(was_training)
        # generate() leaves rope_deltas of this batch on the model; a later text-only training forward
        # of another batch size would reuse them (HF's Glm4v: batch // stale batch = 0 rows of positions).
        self.model.model.rope_deltas = None
        groups: list[list[Completion]] = [[] for _ in prompts]
        for row, (prompt, gen) in enumerate(zip(rows, out[:, width:].tolist())):
            stop = next((i for i, t in enumerate(gen) if t in self.eos_token_ids), None)
            tokens = gen if stop is None else gen[: stop + 1]
            groups[row // n].append(Completion(prompt.input_ids, tokens, "length" if stop is None else "stop"))
        return groups


def sampling_kwargs(temperature: float, top_p: float) -> dict[str, Any]:
    """HF `generate` settings: temperature 0 is greedy (as in vLLM), which HF spells do_sample=False."""
    if temperature == 0:
        return {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
    return {"do_sample": True, "temperature": temperature, "top_p": top_p, "top_k": 0}


def concat_media(prompts: list[EncodedPrompt]) -> dict[str, torch.Tensor]:
    """Stack each row's pixel tensors in row order, as Glm4v's forward expects for a batch."""
    keys = {k for p in prompts for k in p.tensors}
    return {k: torch.cat([p.tensors[k] for p in prompts if k in p.tensors]) for k in sorted(keys)}

