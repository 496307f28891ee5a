"""The glm41v reasoning parser on the tiny model's real tokenizer: text split, id-level rules,
streaming equal to the whole-text split, registration under its name."""

from __future__ import annotations

import pytest

from vllm_adapter.reasoning_parser import Glm41vReasoningParser


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture
def parser(tok):
    return Glm41vReasoningParser(tok)


def ids(tok, text: str) -> list[int]:
    return tok.encode(text, add_special_tokens=False)


def test_registered_for_vllm():
    from vllm.reasoning import ReasoningParserManager

    from vllm_adapter.plugin import register

    register()
    assert ReasoningParserManager.get_reasoning_parser("glm41v") is Glm41vReasoningParser


def test_one_profile_per_tokenizer(tok, tiny_model_dir, monkeypatch):
    """vLLM builds a parser per request; the profile (a scan of the whole vocabulary) is built once
    per tokenizer object (before: 8 ms per parser on this 1024-token vocabulary, twice per chat request)."""
    from transformers import AutoTokenizer

    import vllm_adapter.reasoning_parser as rp

    built = []
    real = rp.build_profile
    monkeypatch.setattr(rp, "build_profile", lambda t, **kw: built.append(t) or real(t, **kw))
    monkeypatch.setattr(rp, "_PROFILES", {})
    first = [Glm41vReasoningParser(tok) for _ in range(5)]
    assert len(built) == 1 and all(p.profile is first[0].profile for p in first)
    other = AutoTokenizer.from_pretrained(tiny_model_dir)  # another tokenizer object: its own profile
    assert Glm41vReasoningParser(other).profile == first[0].profile and len(built) == 2


@pytest.mark.parametrize(("text", "reasoning", "content"), [
    ("<think>a b</think><answer>The <|begin_of_box|>5<|end_of_box|></answer>", "a b", "The <|begin_of_box|>5<|end_of_box|>"),
    ("<think>cut off", "cut off", None),
    ("no thinking at all", None, "no thinking at all"),
    ("opened by the prompt</think><answer>x</answer>", "opened by the prompt", "x"),
    ("<think></think><answer></answer>", "", None),
    # The prompt opened thinking and the (random) model wrote a stray `<think>` later: just text.
    ("a<think>b</think><answer>c</answer>", "a<think>b", "c"),
    ("a b</think><answer>c<think>d</answer>", "a b", "c<think>d"),
])
def test_extract_reasoning(parser, text, reasoning, content):
    assert parser.extract_reasoning(text, None) == (reasoning, content)


def test_the_request_says_whether_the_prompt_opened_thinking(tok):
    """`thinkcap serve` marks requests whose prompt its template ended with `<think>`: then a thought
    the model ended with EOS (no close in the output) is still reasoning, counted on ids."""
    from types import SimpleNamespace

    opened, plain = Glm41vReasoningParser(tok), Glm41vReasoningParser(tok)
    opened.adjust_request(SimpleNamespace(vllm_xargs={"prompt_opened_thinking": 1}))
    plain.adjust_request(SimpleNamespace(vllm_xargs={"prompt_opened_thinking": 0}))
    assert opened.extract_reasoning("one two", None) == ("one two", None)
    assert opened.count_reasoning_tokens(ids(tok, "one two")) == len(ids(tok, "one two"))
    assert opened.extract_content_ids(ids(tok, "one two")) == []
    assert plain.extract_reasoning("one two", None) == (None, "one two")
    assert plain.extract_reasoning("x</think><answer>y", None) == (None, "x</think>y")
    # A continuation that opens a thought midway keeps its start as content, as streaming does (issue 19.7).
    assert plain.extract_reasoning("Sure<think>hm", None) == ("hm", "Sure")
    assert plain.extract_reasoning("Sure<think>hm</think><answer> 5</answer>", None) == ("hm", "Sure 5")

    assert plain.count_reasoning_tokens(ids(tok, "one two")) == 0


def test_reasoning_ends_only_after_the_whole_closing_sequence(parser, tok):
    think, close, answer = (tok.convert_tokens_to_ids(t) for t in ("<think>", "</think>", "<answer>"))
    x = ids(tok, "hi")
    assert not parser.is_reasoning_end([*x, think, *x])
    assert not parser.is_reasoning_end([*x, think, *x, close])  # a grammar must not mask the forced <answer>
    assert parser.is_reasoning_end([*x, think, *x, close, answer])
    assert parser.is_reasoning_end([*x, think, *x, close, x[0]])  # the model left the format
    assert not parser.is_reasoning_end(x)  # nothing opened yet


def test_counts_and_content_ids_on_ids(parser, tok):
    out = ids(tok, "<think>one two three</think><answer>ok</answer>")
    inner = ids(tok, "one two three")
    assert parser.count_reasoning_tokens(out) == len(inner)
    assert parser.extract_content_ids(out) == ids(tok, "ok")
    assert parser.count_reasoning_tokens(ids(tok, "one two</think><answer>x")) == len(ids(tok, "one two"))
    stray = ids(tok, "one two</think><answer>x<think>y")  # opened by the prompt; `<think>` in the answer
    assert parser.count_reasoning_tokens(stray) == len(ids(tok, "one two"))
    assert parser.extract_content_ids(stray) == ids(tok, "x<think>y")


def test_streaming_equals_whole_text(parser, tok):
    text = "<think>step one, step two</think><answer>The <|begin_of_box|>7<|end_of_box|>"
    out = ids(tok, text)
    reasoning, content, previous = "", "", []
    for i, t in enumerate(out):
        delta = tok.decode([t])
        msg = parser.extract_reasoning_streaming(tok.decode(previous), tok.decode(out[: i + 1]), delta,
                                                 previous, out[: i + 1], [t])
        previous = out[: i + 1]
        if msg is not None:
            reasoning += msg.reasoning or ""
            content += msg.content or ""
    assert (reasoning, content) == parser.extract_reasoning(text, None)


@pytest.mark.parametrize("text", ["Sure<think>hm", "Sure<think>hm</think><answer> 5</answer>", "plain text"])
def test_a_continuation_splits_the_same_streamed_or_not(tok, text):
    """The prompt did not open thinking (`continue_final_message`): stream and whole text agree."""
    from types import SimpleNamespace

    whole, streamed = Glm41vReasoningParser(tok), Glm41vReasoningParser(tok)
    whole.adjust_request(SimpleNamespace(vllm_xargs={"prompt_opened_thinking": 0}))
    streamed.adjust_initial_state_from_prompt(ids(tok, "<|user|>hi<|assistant|>"))
    out, reasoning, content = ids(tok, text), "", ""
    for i, t in enumerate(out):
        msg = streamed.extract_reasoning_streaming(tok.decode(out[:i]), tok.decode(out[: i + 1]), tok.decode([t]),
                                                   out[:i], out[: i + 1], [t])
        if msg is not None:
            reasoning, content = reasoning + (msg.reasoning or ""), content + (msg.content or "")
    assert (reasoning or None, content or None) == whole.extract_reasoning(text, None)
