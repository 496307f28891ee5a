"""`form_exploration`: open some samples' thoughts in each form, so every group compares the forms.

Budget conditioning has to learn which form of thought to write under which budget (running sums:
the short form `a3 b8 c10` fits small budgets, the long form `a3=3 b5=8` is the more accurate when
it fits). Left to itself, GRPO loses a form within a few steps at every budget at once (docs/training.md,
e23-e30): both ends are absorbing, since a form nobody writes casts no vote, however well it would have
done. Here a fixed share of each group is started in each form: the opening tokens (the first ones where
the task's worked thoughts in the two forms differ: `a3=` and `a3 b`) are appended to that sample's prompt,
and the rest of the thought is the policy's own continuation. The free samples of the group get their
advantages against samples of both forms under the same budget: a budget where the long form does better
pushes the free samples' short openings down there, whatever the policy currently prefers. That is the
signal the hint needs, and it cannot die out. Opened samples are not trained on (`training/train.py`): at a
budget where their form is the wrong one they lose, and training on that would teach the form's content,
which is the same under every budget, to be bad everywhere (measured: with them trained, 3 of 3 seeds lost
the short form at every budget, docs/training.md).

The opening counts against the sample's budget (its engine budget is shortened by it, its thinking length
includes it), the hint still shows the sample's budget, and the logged form shares count free samples only,
so they stay the policy's own preference.

`form_credit` goes one step further: the free samples' advantages only reach the form choice through
the forms the policy still samples, so once it writes one form at a budget nothing there pushes it
back. `form_choices` credits the choice itself: per (prompt, budget) subgroup, each form's value is
the mean reward of its samples (opened and free), and one sample per form holds just the token where
the forms part (the context is the prompt, `<think>` and the forms' shared first tokens), with
advantage form_credit x (that form's value - the mean over forms). Both forms are credited in every
subgroup where they differ, whatever the policy's current preference. The content is then trained
within each form: every sample, opened ones included, gets its advantage against the samples of its
own form under its budget (`collect._roll`; a sample with no form, no thought or one cut at the
budget, against its whole budget subgroup). A form the policy stopped writing keeps its content
trained by its opened samples (measured without that: on the default task the long form's opened
samples at budget 32 fell from 1.00 to 0.01 correct within 40 steps once the free samples were all
short, and its value fell with them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from budget import ThinkProfile
from budget.state import Phase, prompt_phase
from tasks.records import Record
from tasks.running_sums import form_thoughts
from training.rollout.samples import Outcome, Sample


@dataclass(frozen=True)
class Opening:
    form: str
    text: str  # appended to the prompt, after the chat template's opened thought
    num_tokens: int


def openings(record: Record, tokenizer: Any) -> list[Opening]:
    """Each form's opening for `record`: its worked thought up to and including the first token
    where the forms' token ids differ. [] for a task without forms."""
    thoughts = form_thoughts(record)
    if len(thoughts) < 2:
        return []
    ids = {form: tokenizer.encode(text, add_special_tokens=False) for form, text in sorted(thoughts.items())}
    cut = 0
    while all(cut < len(seq) for seq in ids.values()) and len({seq[cut] for seq in ids.values()}) == 1:
        cut += 1
    return [Opening(form, tokenizer.decode(seq[: cut + 1]), len(seq[: cut + 1])) for form, seq in ids.items()]


def opened_prompt(encode: Any, record: Record, budget: int | None, opening: Opening, profile: ThinkProfile,
                  tokenizer: Any) -> Any:
    """`record`'s prompt under `budget` (the hint shows it) with the thought opened by `opening`: after
    `<think>` where the chat template leaves the thought to the model (GLM-4.1V's). Refuses an opening
    that does not tokenize as its own ids after the prompt (its budget accounting would be off)."""
    plain = encode(record, budget)
    opens = prompt_phase(profile, plain.input_ids) != Phase.THINKING
    lead = tokenizer.decode([profile.think_open_id]) if opens else ""
    prompt = encode(record, budget, lead + opening.text)
    if prompt.input_ids[: len(plain.input_ids)] != plain.input_ids or \
            len(prompt.input_ids) != len(plain.input_ids) + opens + opening.num_tokens:
        raise ValueError(f"the {opening.form} opening {lead + opening.text!r} does not tokenize the same after the prompt")
    return prompt


def forced_slots(group_size: int, share: float, n_forms: int) -> list[int | None]:
    """For each sample of a group: the index of the form it is opened in, or None (free). The last
    round(share * group_size) samples are forced, cycling through the forms; at least one per form
    when share > 0 and the group has room for it and a free sample."""
    if share <= 0 or n_forms == 0:
        return [None] * group_size
    forced = min(group_size - 1, max(n_forms, round(share * group_size)))
    return [None] * (group_size - forced) + [i % n_forms for i in range(forced)]


def form_choices(encode: Any, records: list[Record], base: int, samples: list[Sample], credit: float,
                 profile: ThinkProfile, tokenizer: Any) -> list[Sample]:
    """`form_credit`: one one-token sample per form for each (group, budget) of `samples` (one round's,
    group `base + i` being `records[i]`) whose forms' mean rewards differ; the token is where the forms
    part, its advantage credit x (the form's mean reward - the mean over forms)."""
    by_key: dict[tuple[int, int | None], dict[str, list[float]]] = {}
    for s in samples:
        form = s.opened or s.form  # an opened sample is in its opening's form, whatever followed
        if form is not None and s.cut is None:
            by_key.setdefault((s.group, s.think_budget), {}).setdefault(form, []).append(s.reward["reward"])
    out = []
    for (group, budget), rewards in sorted(by_key.items(), key=lambda kv: (kv[0][0], kv[0][1] or -1)):
        record = records[group - base]
        forms = {o.form: o for o in openings(record, tokenizer)}
        if set(rewards) != set(forms):  # a form with no sample in this subgroup: no comparison
            continue
        value = {f: sum(r) / len(r) for f, r in rewards.items()}
        mean = sum(value.values()) / len(value)
        if max(value.values()) == min(value.values()):
            continue
        plain = encode(record, budget)
        tails = {f: opened_prompt(encode, record, budget, o, profile, tokenizer).input_ids[len(plain.input_ids):]
                 for f, o in forms.items()}
        if len({tuple(ids[:-1]) for ids in tails.values()}) != 1:  # the choice is one token in one context
            raise ValueError(f"the forms' openings of record {record.id!r} differ before their last token: {tails}")
        for form, ids in sorted(tails.items()):
            out.append(Sample(group=group, prompt=plain.extended(ids[:-1]), response_ids=ids[-1:], loss_mask=[1],
                              num_thinking_tokens=0, outcome=Outcome.STOPPED, think_budget=budget,
                              form=form, form_choice=True, reward={"reward": value[form]},
                              advantage=credit * (value[form] - mean)))
    return out
