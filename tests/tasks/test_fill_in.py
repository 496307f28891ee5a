"""Multiple choice → fill-in-the-blank conversion of training records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from thinkcap.cli import main as thinkcap
from tasks.fill_in import FILL_IN_HINT, convert


def test_letter_answer_becomes_the_option_text_and_options_leave_the_prompt():
    rec = {"id": "q1", "domain": "multiple_choice", "answer": "(C)", "options": ["red", "green", "blue", "black"],
           "prompt": "What colour is the sky?\nA. red\nB. green\nC. blue\nD. black"}
    out = convert(rec)
    assert out["answer"] == "blue" and out["domain"] == "exact" and "options" not in out
    assert out["prompt"] == f"What colour is the sky? {FILL_IN_HINT}"
    assert out["converted_from"] == "multiple_choice"


def test_numeric_options_and_mappings_and_text_answers():
    out = convert({"domain": "multiple_choice", "answer": "12", "options": {"a": "10", "b": "12"}, "prompt": "x"})
    assert out["answer"] == 12.0 and out["domain"] == "numeric"
    assert convert({"domain": "counting", "answer": 3, "prompt": "x"}) == {"domain": "counting", "answer": 3, "prompt": "x"}
    with pytest.raises(ValueError, match="names none of the options"):
        convert({"answer": "E", "options": ["a", "b"]}, "f.jsonl:3")


def test_cli(tmp_path: Path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "1", "domain": "multiple_choice", "answer": "B", "options": ["3", "4"],
                               "prompt": "How many?\n(A) 3\n(B) 4"}) + "\n" + json.dumps({"id": "2", "domain": "counting",
                                                                                         "answer": 2, "prompt": "n?"}) + "\n")
    assert thinkcap(["train", "--mc-to-fill-in", str(src), str(tmp_path / "out.jsonl")]) == 0
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert rows[0]["answer"] == 4.0 and rows[0]["prompt"].startswith("How many?") and "(A)" not in rows[0]["prompt"]
    assert rows[1]["domain"] == "counting" and "1 of 2 records converted" in capsys.readouterr().out
    (tmp_path / "bad.jsonl").write_text(json.dumps({"answer": "Z", "options": ["a"]}) + "\n")
    assert thinkcap(["train", "--mc-to-fill-in", str(tmp_path / "bad.jsonl"), str(tmp_path / "o2.jsonl")]) == 2
