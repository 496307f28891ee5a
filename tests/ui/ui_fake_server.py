"""A small OpenAI-compatible server speaking the streaming format of docs/api.md.

It stands in for `thinkcap serve` in the fast UI tests: deterministic "thinking" that stops on
its own after `NATURAL_THINKING` tokens or is cut by the think budget, then an answer that
reports what the request contained, so tests can check what the demo sent.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

MODEL = "fake-glm-4.1v"
NATURAL_THINKING = 12  # thinking tokens when the budget does not cut in
CLOSING = 2  # `</think><answer>`: counted in completion tokens, like the real server
ANSWER_RESERVE = 16  # the real server's default `--answer-reserve`
MAX_MODEL_LEN = 4096  # reported by /v1/models, enforced like vLLM does
FAIL_WORD = "crash-now"  # a user message containing it makes the stream fail after the thinking
LONG_WORD = "long-thought"  # ... makes a LONG_THINKING-token thought, streamed fast
LONG_THINKING = 3000
SLOW_WORD = "slow-thought"  # ... makes a thought slow enough to press Stop or kill the server in
SLOW_THINKING, SLOW_DELAY = 600, 0.05
NO_ANSWER_WORD = "no-answer"  # ... ends the turn right after thinking, with an empty answer
STRAY_BOX_WORD = "stray-box"  # ... answers with a close-box marker that was never opened
LONG_BOX_WORD = "long-box"  # ... boxes a long unbroken answer
MATH_WORD = "math-answer"  # ... answers with inline math in both delimiter styles
LONG_BOX = "x" * 20 + "=" + "1234567890" * 8
MATH_ANSWER = ["So", " $x^2+1$", " and", r" \(y_1\)", " hold", "."]
WORDS = ["Let", " me", " look", " at", " the", " picture", " and", " count", " carefully", "."]
TOKEN_BASE = 1000  # fake token ids: TOKEN_BASE + index in WORDS


def token_id(word: str) -> int:
    return TOKEN_BASE + WORDS.index(word) if word in WORDS else 7


def cut_thought(body: dict) -> str | None:
    """The thought of a continued assistant message (`<think>` + a cut thought), if any."""
    last = body["messages"][-1]
    if not body.get("continue_final_message") or last["role"] != "assistant":
        return None
    return str(last["content"]).removeprefix("<think>")


def error(status: int, message: str, type_: str = "invalid_request_error") -> JSONResponse:
    body = {"error": {"message": message, "type": type_, "param": None, "code": status}}
    return JSONResponse(body, status_code=status)


def count_media(messages: list[dict]) -> tuple[int, int, str | None]:
    """(images, videos, problem) over the request's content parts."""
    images = videos = 0
    for message in messages:
        parts = message["content"] if isinstance(message["content"], list) else []
        for part in parts:
            kind = part.get("type")
            if kind in ("image_url", "video_url"):
                url = part[kind]["url"]
                if not url.startswith(f"data:{kind.split('_')[0]}/"):
                    return images, videos, f"{kind} must be a data URL of the right type"
                images += kind == "image_url"
                videos += kind == "video_url"
    return images, videos, None


def answer_tokens(body: dict, images: int, videos: int) -> list[str]:
    if (thought := cut_thought(body)) is not None:  # the answer says where the thought was cut
        words = len(tokenize(thought))
        box = LONG_BOX if LONG_BOX_WORD in json.dumps(body["messages"]) else str(words)
        return ["Cut", " after", f" {words}", " tokens", ":", " <|begin_of_box|>", box,
                "<|end_of_box|>"]
    last = json.dumps(body["messages"][-1])
    if LONG_BOX_WORD in last:
        return ["It", " is", " <|begin_of_box|>", LONG_BOX, "<|end_of_box|>"]
    if MATH_WORD in last:
        return MATH_ANSWER
    turns = sum(m["role"] == "user" for m in body["messages"])
    return ["I", " see", f" {images}", " images", ",", f" {videos}", " videos", " in",
            f" {turns}", " turns", ".", " The", " answer", " is", " <|begin_of_box|>", "3",
            "<|end_of_box|>", "."]


def boxed(answer: list[str]) -> str | None:
    found = re.search(r"<\|begin_of_box\|>(.*?)<\|end_of_box\|>", "".join(answer))
    return found.group(1) if found else None


def chunk(choice: dict | None = None, **extra) -> str:
    data = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0,
            "model": MODEL, "choices": [choice] if choice else [], **extra}
    return f"data: {json.dumps(data)}\n\n"


def tokenize(text: str) -> list[int]:
    return [token_id(w) for w in re.findall(r"\s*[A-Za-z]+|[^\sA-Za-z]", text)]


def thought_shape(body: dict) -> tuple[int, float]:
    """(natural thinking length, seconds between thinking chunks) for this request."""
    if cut_thought(body) is not None:
        return 0, 0.0  # thinking is closed already: the forced answer follows at once
    last = json.dumps(body["messages"][-1])
    if LONG_WORD in last:
        return LONG_THINKING, 0.001
    if SLOW_WORD in last:
        return SLOW_THINKING, SLOW_DELAY
    return NATURAL_THINKING, 0.01  # a few intermediate states for the page to render


class Concurrency:
    """How many streams run at once, and the most seen: Compare must stream in parallel."""

    def __init__(self) -> None:
        self._lock, self.active, self.most = threading.Lock(), 0, 0

    def __call__(self, streams: Iterator[str]) -> Iterator[str]:
        with self._lock:
            self.active += 1
            self.most = max(self.most, self.active)
        try:
            yield from streams
        finally:
            with self._lock:
                self.active -= 1


def budget_controls(body: dict) -> str | None:
    """The real server's 400s for its budget controls (docs/api.md), or None."""
    grace, message = body.get("think_budget_grace"), body.get("think_budget_message")
    if grace is not None and (not isinstance(grace, int) or isinstance(grace, bool) or grace < 0):
        return "think_budget_grace must be an integer >= 0"
    if message is not None and (not isinstance(message, str) or len(message) > 2000):
        return "think_budget_message must be a string of at most 2000 characters"
    if body.get("think_budget_action", "force") not in ("force", "truncate"):
        return "think_budget_action must be 'force' or 'truncate'"
    return None


def thought_words(natural: int, effective: int | None, body: dict) -> tuple[list[str], str]:
    """The thought's words and its `close_reason`, by the rules of docs/api.md: at the budget
    the thought is truncated, or (grace G) goes on to the first sentence end (a word "."),
    forced at budget + G; a wrap-up message takes the thought's last tokens (it counts as
    thinking), skipped when longer than the thought."""
    words = [WORDS[i % len(WORDS)] for i in range(natural)]
    if cut_thought(body) is not None:
        return [], "budget"  # thinking open in the prompt, budget 0: closed at once
    if effective is None or effective >= natural:
        return words, "model"
    if body.get("think_budget_action") == "truncate":
        return words[:effective], "truncated"
    grace = body.get("think_budget_grace") or 0
    end, reason = effective, "budget"
    if grace:
        window = words[effective:min(natural, effective + grace)]
        ends = [i for i, w in enumerate(window) if w == "."]
        end, reason = ((effective + ends[0] + 1, "boundary") if ends
                       else (effective + grace, "grace_limit"))
    words = [WORDS[i % len(WORDS)] for i in range(end)]
    message = tokenize_words(body.get("think_budget_message") or "")
    if message and len(message) <= len(words):
        words = words[:len(words) - len(message)] + message
    return words, reason


def tokenize_words(text: str) -> list[str]:
    return re.findall(r"\s*[A-Za-z]+|[^\sA-Za-z]", text)


def stream(body: dict, budget: int | None, effective: int | None, images: int,
           videos: int) -> Iterator[str]:
    natural, delay = thought_shape(body)
    thought, close = thought_words(natural, effective, body)
    thinking = len(thought)
    # Forced: closed by the budget (a continued thought's budget 0 included), like the real server.
    forced = close in ("budget", "boundary", "grace_limit")
    ids = bool(body.get("return_token_ids"))
    for word in thought:
        choice = {"index": 0, "delta": {"reasoning_content": word}}
        yield chunk({**choice, "token_ids": [token_id(word)]} if ids else choice)
        time.sleep(delay)
    if FAIL_WORD in json.dumps(body["messages"][-1]):  # the engine dies mid-stream
        failure = {"message": "generation failed: RuntimeError", "type": "InternalServerError",
                   "param": None, "code": 500}
        yield f"data: {json.dumps({'error': failure})}\n\n"
        yield "data: [DONE]\n\n"
        return
    answer = answer_tokens(body, images, videos)
    if close == "truncated":  # no closing sequence, no answer: the reply ends at the budget
        answer = [""]
    elif NO_ANSWER_WORD in json.dumps(body["messages"][-1]):
        answer = [""]
    elif STRAY_BOX_WORD in json.dumps(body["messages"][-1]):
        answer = ["The", " answer", " is", " 4", "<|end_of_box|>", "."]
    for i, token in enumerate(answer):
        last = i == len(answer) - 1
        end = "length" if close == "truncated" else "stop"
        choice = {"index": 0, "delta": {"content": token}, "finish_reason": end if last else None}
        if ids:
            choice["token_ids"] = [token_id(token)]
        if last:
            choice["thinkcap"] = {"num_thinking_tokens": thinking, "answer_forced": forced,
                                  "boxed_answer": boxed(answer), "answer_reserve": ANSWER_RESERVE,
                                  "num_answer_tokens": len([t for t in answer if t]),
                                  "close_reason": close}
            yield chunk(choice, thinkcap={"think_budget": budget, "effective_think_budget": effective})
        else:
            yield chunk(choice)
    usage = {"prompt_tokens": 10, "completion_tokens": thinking + CLOSING + len(answer),
             "total_tokens": 10 + thinking + CLOSING + len(answer),
             "completion_tokens_details": {"reasoning_tokens": thinking}}
    yield chunk(usage=usage)
    yield "data: [DONE]\n\n"


def make_app() -> FastAPI:
    app = FastAPI()
    app.state.requests = []  # every chat request body, for the tests to inspect
    app.state.concurrency = Concurrency()

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.get("/v1/models")
    def models() -> dict:
        return {"object": "list", "data": [{"id": MODEL, "object": "model", "created": 0,
                                            "owned_by": "thinkcap",
                                            "max_model_len": MAX_MODEL_LEN}]}

    @app.post("/tokenize")
    async def tokenize_route(request: Request) -> dict:
        ids = tokenize((await request.json())["prompt"])
        return {"tokens": ids, "count": len(ids), "max_model_len": MAX_MODEL_LEN}

    @app.post("/detokenize")
    async def detokenize(request: Request) -> dict:
        ids = (await request.json())["tokens"]
        return {"prompt": "".join(WORDS[i - TOKEN_BASE] for i in ids if i >= TOKEN_BASE)}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.json()
        app.state.requests.append(body)
        if body.get("model") != MODEL:
            return error(404, f"The model `{body.get('model')}` does not exist.", "NotFoundError")
        budget = body.get("think_budget")
        if budget is not None and (not isinstance(budget, int) or budget < -1):
            return error(400, "think_budget must be an integer >= 0, or null / -1 for unlimited")
        budget = None if budget == -1 else budget
        if body.get("max_tokens", 0) > MAX_MODEL_LEN:  # vLLM's own check and wording
            return error(400, f"max_tokens={body['max_tokens']} cannot be greater than "
                              f"max_model_len={MAX_MODEL_LEN}. Please request fewer output tokens.")
        room = body.get("max_tokens", MAX_MODEL_LEN) - CLOSING - ANSWER_RESERVE
        if room < 0:
            return error(400, f"max_tokens={body.get('max_tokens')} cannot hold the closing "
                              f"sequence and an answer")
        if problem := budget_controls(body):
            return error(400, problem)
        images, videos, problem = count_media(body["messages"])
        if problem:
            return error(400, problem)
        effective = room if budget is None else min(budget, room)  # as the real server reports
        streams = app.state.concurrency(stream(body, budget, effective, images, videos))
        return StreamingResponse(streams,
                                 media_type="text/event-stream")

    return app


class FakeServer:
    """Runs `make_app()` with uvicorn in a daemon thread on the given port."""

    def __init__(self, port: int):
        self.app = make_app()
        config = uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self.api_base = f"http://127.0.0.1:{port}/v1"

    @property
    def requests(self) -> list[dict]:
        return self.app.state.requests

    def start(self) -> None:
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the fake server failed to start")
            time.sleep(0.05)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join()


if __name__ == "__main__":  # a server in its own process, for tests that kill it mid-stream
    import sys

    server = FakeServer(int(sys.argv[1]))
    print(f"fake server on {server.api_base}", flush=True)
    server._server.run()
