"""The budget hint: one template function for the server and training."""

from __future__ import annotations

import pytest

from budget.hint import BudgetHint, HintError, parse_hint, read_policy_hint, write_policy_hint

HINT = BudgetHint("Think for at most {budget} tokens.")


def test_text():
    assert HINT.text(8) == "Think for at most 8 tokens."
    assert BudgetHint("≤{budget}").text(0) == "≤0"


def test_appended_to_the_last_user_message_without_changing_the_input():
    messages = [{"role": "user", "content": "first"}, {"role": "assistant", "content": "a"},
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "u"}}, {"type": "text", "text": "q"}]}]
    out = HINT.apply(messages, 16)
    assert out[0] == messages[0] and out[1] == messages[1]
    assert out[2]["content"][-1] == {"type": "text", "text": "Think for at most 16 tokens."}
    assert len(messages[2]["content"]) == 2  # the caller's list is untouched
    assert HINT.apply([{"role": "user", "content": "q"}], 0)[0]["content"] == "q\nThink for at most 0 tokens."
    assert HINT.apply(messages, None) is messages


@pytest.mark.parametrize("bad", ["no placeholder", "{budget} and {budget}", "{tokens}", "{budget"])
def test_bad_templates_say_what_to_change(bad):
    with pytest.raises(HintError, match="budget hint template"):
        BudgetHint(bad)


def test_off_and_policy_file(tmp_path):
    assert parse_hint("off") is None and parse_hint("") is None
    assert read_policy_hint(tmp_path) == (False, None)
    write_policy_hint(tmp_path, HINT)
    assert read_policy_hint(tmp_path) == (True, HINT)
    write_policy_hint(tmp_path, None)
    assert read_policy_hint(tmp_path) == (True, None)


def test_no_user_message_is_an_error():
    with pytest.raises(HintError, match="last user message"):
        HINT.apply([{"role": "system", "content": "s"}], 4)


def test_a_policy_file_with_unknown_hint_fields_is_refused_by_name(tmp_path):
    import json

    import pytest

    from budget.hint import POLICY_FILE, HintError, read_policy_hint

    (tmp_path / POLICY_FILE).write_text(json.dumps({"budget_hint": {"template": "≤ {budget}", "unlimited": None}}))
    with pytest.raises(HintError, match=r"thinkcap_policy.json: budget_hint has fields .*\['unlimited'\]"):
        read_policy_hint(tmp_path)
