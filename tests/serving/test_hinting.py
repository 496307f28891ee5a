"""The server's budget hint: the enforced budget, shown in each dialect's conversation."""

from __future__ import annotations

from budget.hint import BudgetHint
from serving.dialects import prepare_chat, prepare_chat_batch, prepare_completion, prepare_messages, prepare_responses
from serving.hinting import add_hint, shown_budget
from serving.settings import ServerSettings

S = ServerSettings(answer_reserve=16)
HINT = BudgetHint("Think for at most {budget} tokens.")


def hinted(prepare, body, closing=2, max_model_len=4096):
    prepared = prepare(body, S)
    add_hint(body, prepared, HINT, closing, max_model_len)
    return body


def test_chat_shows_the_budget_after_the_reserve():
    body = hinted(prepare_chat, {"messages": [{"role": "user", "content": "2+2?"}], "think_budget": 8})
    assert body["messages"][-1]["content"] == "2+2?\nThink for at most 8 tokens."
    body = hinted(prepare_chat, {"messages": [{"role": "user", "content": "q"}], "think_budget": 100, "max_tokens": 50})
    assert body["messages"][-1]["content"].endswith("at most 32 tokens.")  # 50 - 2 closing - 16 reserve
    body = hinted(prepare_chat, {"messages": [{"role": "user", "content": "q"}], "max_tokens": 72})
    assert body["messages"][-1]["content"] == "q\nThink for at most 54 tokens."  # no budget: what max_tokens leaves


def test_every_dialect_but_raw_completions():
    body = hinted(prepare_responses, {"input": "q", "reasoning": {"effort": "none"}})
    assert body["input"] == [{"role": "user", "content": "q\nThink for at most 0 tokens."}]
    body = hinted(prepare_messages, {"max_tokens": 64, "thinking": {"type": "enabled", "budget_tokens": 4},
                                     "messages": [{"role": "user", "content": [{"type": "text", "text": "q"}]}]})
    assert body["messages"][0]["content"][-1] == {"type": "text", "text": "Think for at most 4 tokens."}
    body = hinted(prepare_chat_batch, {"messages": [[{"role": "user", "content": "a"}], [{"role": "user", "content": "b"}]],
                                       "think_budget": 3})
    assert [c[0]["content"] for c in body["messages"]] == ["a\nThink for at most 3 tokens.", "b\nThink for at most 3 tokens."]
    body = hinted(prepare_completion, {"prompt": "raw", "think_budget": 3})
    assert body["prompt"] == "raw"


def test_shown_budget_follows_the_fit_rule():
    prepared = prepare_chat({"messages": [{"role": "user", "content": "q"}], "think_budget": 4, "max_tokens": 64,
                             "response_format": {"type": "json_object"}}, S)
    assert shown_budget(prepared.params, 64, 2, 4096) == 4  # the structured reserve shrinks, not the budget


def test_the_hint_added_is_reported_and_a_continued_reply_is_not_rehinted():
    body = {"messages": [{"role": "user", "content": "q"}], "think_budget": 8}
    assert add_hint(body, prepare_chat(body, S), HINT, 2, 4096) == "Think for at most 8 tokens."
    cont = {"messages": [{"role": "user", "content": "q\nThink for at most 32 tokens."},
                         {"role": "assistant", "content": "<think>a3 b8"}],
            "continue_final_message": True, "add_generation_prompt": False, "think_budget": 0}
    assert add_hint(cont, prepare_chat(cont, S), HINT, 2, 4096) is None
    assert cont["messages"][0]["content"] == "q\nThink for at most 32 tokens."  # the client's, as sent


def test_a_cut_puts_back_the_hint_its_thought_was_written_under():
    from budget.cuts import cut_messages

    messages = [{"role": "user", "content": "q"}]
    assert cut_messages(messages, "a3 b8", "Think for at most 32 tokens.") == [
        {"role": "user", "content": "q\nThink for at most 32 tokens."}, {"role": "assistant", "content": "<think>a3 b8"}]
    assert cut_messages(messages, "a3", None)[0] == {"role": "user", "content": "q"}
