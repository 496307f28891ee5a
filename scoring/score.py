"""Score one response with training's own reward code, so eval accuracy means what the training
reward's accuracy means: the same format gate, the same verifier per domain, the same
exactly-one-box rule.

Training builds a `scoring.response.Response` from token ids; over HTTP the server has already
made that split by ids (thinking in `reasoning_content`, the answer in `content`, `<answer>` tags
removed, box markers kept as text). We build the Response from that split: `boxed` is the inside
of the one box of the answer (None for zero or several), and the layout counts as well formed when
the thinking ended (the server produced an answer part) and no think/answer tag text is left in
either part (a tag the model wrote twice). What HTTP cannot show is whitespace around tags; the
server's split already dropped it.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from budget.profile import FAMILIES
from scoring.response import Response
from scoring.rewards import RewardFn, build_reward_fns

_SPEC = FAMILIES["glm4.1v"]
BOX_OPEN, BOX_CLOSE = _SPEC.box_open, _SPEC.box_close
TAGS = (_SPEC.think_open, _SPEC.think_close, _SPEC.answer_open, _SPEC.answer_close)


@cache
def eval_reward_fns() -> dict[str, RewardFn]:
    """The reward table evaluation scores with (default weights): over HTTP and in training's held-out eval."""
    return build_reward_fns()


def one_box(answer: str) -> str | None:
    """Inside of the answer's single box; None unless exactly one, closed after it opens."""
    if answer.count(BOX_OPEN) != 1 or answer.count(BOX_CLOSE) != 1:
        return None
    start, end = answer.index(BOX_OPEN) + len(BOX_OPEN), answer.index(BOX_CLOSE)
    return answer[start:end].strip() if start <= end else None


def response_from_http(reasoning: str, content: str) -> Response:
    boxed = one_box(content)
    stray_tags = any(tag in reasoning or tag in content for tag in TAGS)
    well_formed = bool(content.strip()) and boxed is not None and not stray_tags
    answer = content.replace(BOX_OPEN, "").replace(BOX_CLOSE, "")
    return Response(thinking=reasoning, answer=answer, boxed=boxed, well_formed=well_formed)


def score_response(reasoning: str, content: str, domain: str, reference: Any) -> dict[str, Any]:
    """{"accuracy": [0, 1], "format_valid", "has_answer", "prediction", "reward"}.

    `has_answer`: the answer holds one non-empty box (what a user reads); accuracy is 0 whenever
    the format gate fails, exactly as in the training reward."""
    return score_parsed(response_from_http(reasoning, content), domain, reference)


def score_parsed(response: Response, domain: str, reference: Any) -> dict[str, Any]:
    """The same, for a response already split: over HTTP by `response_from_http`, inside training
    (held-out evaluation) by `Response.from_ids` on the token ids."""
    fns = eval_reward_fns()
    if domain not in fns:
        raise ValueError(f"domain {domain!r} has no verifier; known: {sorted(fns)}")
    parts = fns[domain](response, reference)
    return {
        "accuracy": float(parts["accuracy"]),
        "format_valid": parts["format"] == 1.0,
        "has_answer": bool(response.boxed),
        "prediction": response.boxed,
        "reward": float(parts["reward"]),
    }
