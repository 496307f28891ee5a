"""Model-based judge reward (the report's fluency / instruction-compliance reward), off by default.

    judge_url: http://127.0.0.1:8001/v1   # any OpenAI-compatible server
    judge_model: my-judge
    judge_weight: 0.2

For a well-formed response the judge model reads the answer and returns a 0-10 score; the reward
loses `judge_weight * (1 - score / 10)` (floored at min_reward), like the style penalties, and
`judge` is logged with the other components. Malformed responses never reach the judge (they
already get min_reward). A judge that cannot be reached or answers without a score stops the run
with an error naming the URL: a silently missing reward term would change what is trained.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from scoring.response import Response
from scoring.rewards import RewardFn

JUDGE_PROMPT = (
    "Rate the following answer for fluency and for following the instructions it was given, from 0 "
    "(unreadable or ignores them) to 10 (fluent and compliant). Reply with the number only.\n\nAnswer:\n{answer}"
)
_SCORE = re.compile(r"-?\d+(?:\.\d+)?")


class JudgeReward:
    def __init__(self, base: RewardFn, url: str, model: str, weight: float, min_reward: float = 0.0,
                 timeout: float = 60.0, client: httpx.Client | None = None):
        self.base, self.model, self.weight, self.min_reward = base, model, weight, min_reward
        self.url = url.rstrip("/") + "/chat/completions"
        self.client = client or httpx.Client(timeout=timeout)

    def score(self, response: Response) -> float:
        body = {"model": self.model, "temperature": 0.0, "max_tokens": 8,
                "messages": [{"role": "user", "content": JUDGE_PROMPT.format(answer=response.answer.strip())}]}
        try:
            reply = self.client.post(self.url, json=body)
            reply.raise_for_status()
            text = reply.json()["choices"][0]["message"]["content"] or ""
        except (httpx.HTTPError, KeyError, IndexError, ValueError) as err:
            raise RuntimeError(f"judge at {self.url} failed: {err}") from err
        match = _SCORE.search(text)
        if match is None:
            raise RuntimeError(f"judge at {self.url} gave no 0-10 score: {text!r}")
        return min(10.0, max(0.0, float(match.group()))) / 10.0

    def __call__(self, response: Response, reference: Any) -> dict[str, float]:
        out = dict(self.base(response, reference))
        out["judge"] = 0.0
        if out.get("format", 0.0) > 0:
            out["judge"] = self.score(response)
            out["reward"] = max(self.min_reward, out["reward"] - self.weight * (1.0 - out["judge"]))
        return out


def with_judge(reward_fns: dict[str, RewardFn], url: str, model: str, weight: float,
               min_reward: float = 0.0) -> dict[str, RewardFn]:
    """Every domain's reward with the judge term (one shared HTTP client)."""
    client = httpx.Client(timeout=60.0)
    return {d: JudgeReward(fn, url, model, weight, min_reward, client=client) for d, fn in reward_fns.items()}
