"""The judge reward hook against a real HTTP endpoint speaking the OpenAI chat format."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from budget import build_profile
from scoring.judge import with_judge
from scoring.response import Response
from scoring.rewards import build_reward_fns

BOX = "<|begin_of_box|>{}<|end_of_box|>"


@pytest.fixture()
def judge_server():
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append({"path": self.path, **body})
            answer = body["messages"][0]["content"].split("Answer:")[-1]
            score = "7" if "fluent" in answer else "no idea"
            data = json.dumps({"choices": [{"message": {"role": "assistant", "content": score}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/v1", seen
    server.shutdown()


def test_judge_scores_well_formed_answers_only(tiny_model_dir, judge_server):
    from transformers import AutoTokenizer

    url, seen = judge_server
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    profile = build_profile(tok, model_type="glm4v")
    fns = with_judge(build_reward_fns(), url, "judge-x", weight=0.5)
    split = lambda text: Response.from_ids(tok.encode(text, add_special_tokens=False), profile, tok)  # noqa: E731
    good = split(f"<think>hmm</think><answer>a fluent answer {BOX.format(3)}</answer>")
    out = fns["counting"](good, 3)
    assert out["judge"] == pytest.approx(0.7) and out["reward"] == pytest.approx(1.0 - 0.5 * 0.3)
    assert seen[0]["path"] == "/v1/chat/completions" and seen[0]["model"] == "judge-x"
    assert "a fluent answer" in seen[0]["messages"][0]["content"]
    bad = split("no layout at all")
    assert fns["counting"](bad, 3)["judge"] == 0.0 and len(seen) == 1  # malformed: never sent
    unscored = split(f"<think>x</think><answer>plain {BOX.format(3)}</answer>")
    with pytest.raises(RuntimeError, match="gave no 0-10 score"):
        fns["counting"](unscored, 3)
