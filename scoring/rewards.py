"""Rewards: format gate, accuracy on the boxed answer, style penalties. A registry keyed by domain.

    reward_fn = build_reward_fns()["counting"]
    reward_fn(Response.from_ids(ids, profile, tokenizer), reference)  # -> {"reward": 0.93, "format": 1.0, ...}

The response arrives split by token ids (scoring.response: the same split serving uses), so no
reward parses text with a regex of its own.

Every reward function is a plain callable returning the total under "reward" plus each component,
and the trainer logs every component. A response that breaks the format gets `min_reward` and
nothing else: accuracy is never read from a malformed response (the report's format rule).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from functools import partial
from typing import Any

from scoring.response import Response
from scoring.verifiers import VERIFIERS, Verifier

RewardFn = Callable[[Response, Any], dict[str, float]]

def _words(text: str) -> list[str]:
    # CJK has no spaces: each ideograph/kana counts as a word so both scripts weigh alike.
    return re.findall(r"[\u3040-\u30ff\u3400-\u9fff]|[^\W\d_]+|\d+", text)


def repetition_score(text: str, n: int = 4) -> float:
    """Share of word n-grams that repeat an earlier one: 0 for fresh text, → 1 for a loop."""
    words = _words(text)
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def _script(word: str) -> str:
    ch = word[0]
    if "\u3040" <= ch <= "\u9fff":
        return "cjk"
    if "\u0400" <= ch <= "\u04ff":
        return "cyrillic"
    if ch.isascii():
        return "latin" if ch.isalpha() else "digit"
    return "other"


def language_mix_score(text: str) -> float:
    """Share of words not in the text's dominant script (digits ignored): 0 for one language."""
    scripts = Counter(s for s in map(_script, _words(text)) if s != "digit")
    total = sum(scripts.values())
    return 0.0 if total == 0 else 1.0 - max(scripts.values()) / total


def glm_reward(
    response: Response,
    reference: Any,
    *,
    verifier: Verifier,
    min_reward: float = 0.0,
    repetition_weight: float = 0.5,
    language_weight: float = 0.5,
) -> dict[str, float]:
    """The report's reward for one verifiable sample; see the module docstring."""
    out = {"format": 0.0, "accuracy": 0.0, "repetition": 0.0, "language_mix": 0.0}
    if not response.well_formed or response.boxed is None:
        return {"reward": min_reward, **out}
    out["format"] = 1.0
    out["accuracy"] = float(verifier(response.boxed, reference))
    # Style is judged on what the model wrote, not on the tags around it.
    content = response.thinking + " " + response.answer
    out["repetition"] = repetition_score(content)
    out["language_mix"] = language_mix_score(content)
    penalty = repetition_weight * out["repetition"] + language_weight * out["language_mix"]
    return {"reward": max(min_reward, out["accuracy"] - penalty), **out}


def build_reward_fns(
    min_reward: float = 0.0, repetition_weight: float = 0.5, language_weight: float = 0.5,
    verifiers: dict[str, Verifier] | None = None,
) -> dict[str, RewardFn]:
    """domain → reward function. Pass `verifiers` to add or replace domains."""
    table = {**VERIFIERS, **(verifiers or {})}
    return {
        name: partial(glm_reward, verifier=fn, min_reward=min_reward,
                      repetition_weight=repetition_weight, language_weight=language_weight)
        for name, fn in table.items()
    }
