"""Scoring goes through training's reward functions; the VQA converter writes records they load."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image

from tasks.convert import main as convert_main
from evaluation.dataset import load_items
from scoring.score import score_response

BOX = "<|begin_of_box|>{}<|end_of_box|>"


@pytest.mark.parametrize(("reasoning", "content", "domain", "ref", "expect"), [
    ("count them", "There are " + BOX.format(3) + ".", "counting", 3, (1.0, True, True)),
    ("count them", "There are " + BOX.format("three"), "counting", 3, (1.0, True, True)),  # training's verifier
    ("count them", "There are " + BOX.format(4), "counting", 3, (0.0, True, True)),
    ("hmm", "3", "counting", 3, (0.0, False, False)),  # no box: the format gate gives 0
    ("hmm", BOX.format(3) + BOX.format(3), "counting", 3, (0.0, False, False)),  # two boxes
    ("a <think> b", BOX.format(3), "counting", 3, (0.0, False, True)),  # a tag written twice
    ("thinking ran out", "", "counting", 3, (0.0, False, False)),
    ("", BOX.format("B"), "multiple_choice", "B", (1.0, True, True)),  # budget 0: no thinking at all
    ("", BOX.format("Left."), "exact", "left", (1.0, True, True)),
])
def test_score_response(reasoning, content, domain, ref, expect):
    s = score_response(reasoning, content, domain, ref)
    assert (s["accuracy"], s["format_valid"], s["has_answer"]) == expect


def test_unknown_domain_is_refused():
    with pytest.raises(ValueError, match="no verifier"):
        score_response("", BOX.format(1), "astrology", 1)


@pytest.fixture
def vqa_dir(tmp_path: Path) -> Path:
    (tmp_path / "img").mkdir()
    for name in ("a.png", "b.png"):
        Image.new("RGB", (32, 32), "white").save(tmp_path / "img" / name)
    return tmp_path


def test_convert_csv_choices_and_numbers(vqa_dir: Path, tmp_path: Path):
    src = vqa_dir / "bench.csv"
    with src.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["id", "image", "question", "choices", "answer"])
        w.writeheader()
        w.writerow({"id": "q1", "image": "img/a.png", "question": "Which shape?", "choices": "circle|square|star",
                    "answer": "square"})
        w.writerow({"id": "q2", "image": "img/b.png", "question": "How long is it?", "choices": "", "answer": "12.5"})
        w.writerow({"id": "q3", "image": "", "question": "Colour?", "choices": "", "answer": "red"})
    out = tmp_path / "converted" / "records.jsonl"
    assert convert_main([str(src), str(out)]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["domain"], r["answer"]) for r in records] == [("multiple_choice", "B"), ("numeric", 12.5), ("exact", "red")]
    assert "A. circle\nB. square\nC. star" in records[0]["prompt"]
    items = load_items(out)  # the training loader reads them, media resolve from the new place
    image_part = items[0].messages[0]["content"][0]
    assert image_part["type"] == "image_url" and image_part["image_url"]["url"].startswith("data:image/png;base64,")
    assert items[2].messages[0]["content"][-1]["type"] == "text" and len(items[2].messages[0]["content"]) == 1


def test_convert_jsonl_letter_answer_and_domain_override(vqa_dir: Path, tmp_path: Path):
    src = vqa_dir / "mmmu.jsonl"
    src.write_text(json.dumps({"pic": "img/a.png", "q": "Pick", "opts": ["x", "y"], "gt": "a"}) + "\n"
                   + json.dumps({"pic": "img/b.png", "q": "Solve", "opts": [], "gt": "\\frac{1}{2}"}) + "\n")
    out = tmp_path / "out.jsonl"
    args = [str(src), str(out), "--image-col", "pic", "--question-col", "q", "--choices-col", "opts", "--answer-col", "gt"]
    assert convert_main(args) == 0
    assert [json.loads(line)["answer"] for line in out.read_text().splitlines()] == ["A", "\\frac{1}{2}"]
    assert convert_main([*args, "--domain", "math"]) == 0
    assert {json.loads(line)["domain"] for line in out.read_text().splitlines()} == {"math"}


def test_convert_errors_name_the_row(vqa_dir: Path, tmp_path: Path, capsys):
    src = vqa_dir / "bad.jsonl"
    src.write_text(json.dumps({"image": "img/a.png", "question": "Pick", "choices": ["x", "y"], "answer": "z"}) + "\n")
    assert convert_main([str(src), str(tmp_path / "o.jsonl")]) == 2
    assert "row 1" in capsys.readouterr().err
    src.write_text(json.dumps({"image": "img/missing.png", "question": "Q", "answer": "1"}) + "\n")
    assert convert_main([str(src), str(tmp_path / "o.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert convert_main([str(src), str(tmp_path / "o.jsonl"), "--domain", "astrology"]) == 2


def test_synthetic_items_carry_video_and_images(synthetic_jsonl: Path):
    items = load_items(synthetic_jsonl)
    kinds = {p["type"] for i in items for p in i.messages[0]["content"]}
    assert kinds == {"image_url", "video_url", "text"}
    assert {i.domain for i in items} == {"counting", "numeric", "exact"}
    assert len(load_items(synthetic_jsonl, limit=2, domains={"numeric"})) == 2
