"""The tiny GLM-4.1V checkpoint: determinism, tokenizer/template, HF processor + model, vLLM."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from thinkcap import tiny_model
from thinkcap.tiny_model import SPECIAL_TOKENS, TEXT_MARKERS, build_tiny_model

IMAGE_PREFIX = "[gMASK]<sop><|user|>\n<|begin_of_image|><|image|><|end_of_image|>"


def _picture(size: int = 112, colour: str = "red") -> Image.Image:
    img = Image.new("RGB", (size, size), "white")
    ImageDraw.Draw(img).rectangle([size // 5, size // 5, size * 3 // 4, size * 3 // 4], fill=colour)
    return img


@pytest.fixture(scope="module")
def processor(tiny_model_dir: Path):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def model(tiny_model_dir: Path):
    from transformers import AutoModelForImageTextToText

    return AutoModelForImageTextToText.from_pretrained(tiny_model_dir).eval()


def test_build_is_deterministic_and_cli_guards_dir(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert tiny_model.main([str(a)]) == 0  # the CLI path, seed 0
    build_tiny_model(b, seed=0)
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    build_tiny_model(c, seed=1)
    assert (a / "model.safetensors").read_bytes() != (c / "model.safetensors").read_bytes()
    # A non-empty DIR is refused unless --force.
    assert tiny_model.main([str(c)]) == 1
    assert tiny_model.main([str(c), "--force"]) == 0
    assert (c / "model.safetensors").read_bytes() == (a / "model.safetensors").read_bytes()


def test_ensure_tiny_model_builds_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THINKCAP_HOME", str(tmp_path))
    target = tiny_model.default_model_dir()
    assert target.parent == tmp_path
    first = tiny_model.ensure_tiny_model()
    assert first == target and (target / "model.safetensors").exists()
    stamp = (target / "model.safetensors").stat().st_mtime_ns
    assert tiny_model.ensure_tiny_model() == target
    assert (target / "model.safetensors").stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no temp dirs left behind
    # A racing builder that lost keeps the winner's folder and removes its own.
    loser = tmp_path / "loser"
    loser.mkdir()
    (loser / "config.json").write_text("{}")
    tiny_model._install(loser, target)
    assert not loser.exists() and (target / "model.safetensors").stat().st_mtime_ns == stamp


def test_config_ids_match_tokenizer(tiny_model_dir: Path, processor) -> None:
    config = json.loads((tiny_model_dir / "config.json").read_text())
    tok = processor.tokenizer
    pairs = {
        "image_token_id": "<|image|>", "video_token_id": "<|video|>",
        "image_start_token_id": "<|begin_of_image|>", "image_end_token_id": "<|end_of_image|>",
        "video_start_token_id": "<|begin_of_video|>", "video_end_token_id": "<|end_of_video|>",
    }
    for field, token in pairs.items():
        assert config[field] == tok.convert_tokens_to_ids(token), field
    assert config["text_config"]["vocab_size"] == len(tok)
    gen = json.loads((tiny_model_dir / "generation_config.json").read_text())
    assert gen["eos_token_id"] == tok.convert_tokens_to_ids(["<|endoftext|>", "<|user|>", "<|observation|>"])
    assert tok.eos_token == tok.pad_token == "<|endoftext|>"


def test_special_tokens_are_single_ids(processor) -> None:
    tok = processor.tokenizer
    ids = []
    for token in SPECIAL_TOKENS + TEXT_MARKERS:
        encoded = tok.encode(token, add_special_tokens=False)
        assert len(encoded) == 1, (token, encoded)
        ids.append(encoded[0])
    assert len(set(ids)) == len(ids)
    # Digits and ordinary text round-trip through the byte-level BPE.
    text = "Solve 3x + 5 = 20, so x = 5. Ünïcode too."
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text
    # <think>/<answer> survive skip_special_tokens (reasoning parsers read them); <|user|> does not.
    ids = tok.encode("<think>a</think><answer>b</answer><|user|>", add_special_tokens=False)
    assert tok.decode(ids, skip_special_tokens=True) == "<think>a</think><answer>b</answer>"


def test_chat_template(processor) -> None:
    tok = processor.tokenizer
    image_msg = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is it?"}]}]
    text = tok.apply_chat_template(image_msg, tokenize=False, add_generation_prompt=True)
    assert text == IMAGE_PREFIX + "What is it?<|assistant|>\n"
    assert processor.apply_chat_template(image_msg, tokenize=False, add_generation_prompt=True) == text
    assert not tok.apply_chat_template(image_msg, tokenize=False).endswith("<|assistant|>\n")

    history = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "<think>two and two</think><answer>4</answer>"},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}},
                                     {"type": "video_url", "video_url": {"url": "y"}},
                                     {"type": "text", "text": "And?"}]},
    ]
    text = tok.apply_chat_template(history, tokenize=False, add_generation_prompt=True)
    assert text == (
        "[gMASK]<sop><|system|>\nBe brief.<|user|>\n2+2?<|assistant|>\n<answer>4</answer>"
        "<|user|>\n<|begin_of_image|><|image|><|end_of_image|>"
        "<|begin_of_video|><|video|><|end_of_video|>And?<|assistant|>\n"
    )


def test_processor_and_generate_on_image_and_text(processor, model) -> None:
    import torch

    prompt = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe."}]}],
        tokenize=False, add_generation_prompt=True)
    inputs = processor(text=[prompt], images=[_picture()], return_tensors="pt")
    # 112x112 -> 8x8 patches of 14 px (x2 temporal copies) -> 2x2 merge -> 16 tokens.
    assert inputs["pixel_values"].shape == (64, 3 * 2 * 14 * 14)
    assert inputs["image_grid_thw"].tolist() == [[1, 8, 8]]
    assert int((inputs["input_ids"] == model.config.image_token_id).sum()) == 16
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=8, min_new_tokens=8, do_sample=False)
    assert out.shape[1] == inputs["input_ids"].shape[1] + 8

    # A bigger image is shrunk to the same 16-token budget.
    big = processor(text=[prompt], images=[_picture(448)], return_tensors="pt")
    assert big["image_grid_thw"].tolist() == [[1, 8, 8]]

    text_only = processor.tokenizer(["[gMASK]<sop><|user|>\nHi<|assistant|>\n"], return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**text_only, max_new_tokens=8, min_new_tokens=8, do_sample=False)
    assert out.shape[1] == text_only["input_ids"].shape[1] + 8


def test_processor_and_forward_on_video(processor, model) -> None:
    import torch
    from transformers.video_utils import VideoMetadata

    frames = [_picture(112, c) for c in ("red", "green", "blue", "black")]
    prompt = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What happens?"}]}],
        tokenize=False, add_generation_prompt=True)
    # GLM-4.1V needs the clip's fps to write frame timestamps; frames here are already sampled.
    meta = VideoMetadata(total_num_frames=4, fps=2.0, duration=2.0, frames_indices=[0, 1, 2, 3])
    inputs = processor(text=[prompt], videos=[frames], video_metadata=[meta], do_sample_frames=False,
                       return_tensors="pt")
    assert inputs["video_grid_thw"].tolist() == [[2, 8, 8]]  # 4 frames -> 2 temporal patches
    assert int((inputs["mm_token_type_ids"] == 2).sum()) == 32
    with torch.no_grad():
        logits = model(**inputs).logits
    assert logits.shape == (1, inputs["input_ids"].shape[1], model.config.text_config.vocab_size)
    assert torch.isfinite(logits.float()).all()


_VLLM_SCRIPT = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    from PIL import Image, ImageDraw
    from vllm import LLM, SamplingParams

    t0 = time.time()
    llm = LLM(model=sys.argv[1], enforce_eager=True, max_model_len=2048, seed=0,
              limit_mm_per_prompt={"image": 2, "video": 1})
    t1 = time.time()
    img = Image.new("RGB", (112, 112), "white")
    ImageDraw.Draw(img).rectangle([20, 20, 80, 80], fill="red")
    sp = SamplingParams(temperature=0.0, max_tokens=8, ignore_eos=True)
    res = {}
    out = llm.generate(["[gMASK]<sop><|user|>\\nHello<|assistant|>\\n"], sp)[0]
    res["text"] = [len(out.outputs[0].token_ids), len(out.prompt_token_ids)]
    out = llm.chat([{"role": "user", "content": [{"type": "image_pil", "image_pil": img},
                                                 {"type": "text", "text": "What?"}]}], sp)[0]
    res["image_chat"] = [len(out.outputs[0].token_ids), len(out.prompt_token_ids)]
    frames = np.stack([np.asarray(img)] * 4)
    meta = {"fps": 2.0, "duration": 2.0, "total_num_frames": 4, "frames_indices": [0, 1, 2, 3],
            "video_backend": "opencv", "do_sample_frames": False}
    prompt = "[gMASK]<sop><|user|>\\n<|begin_of_video|><|video|><|end_of_video|>Go<|assistant|>\\n"
    out = llm.generate({"prompt": prompt, "multi_modal_data": {"video": (frames, meta)}}, sp)[0]
    res["video"] = [len(out.outputs[0].token_ids), len(out.prompt_token_ids)]
    res["startup_s"], res["generate_s"] = t1 - t0, time.time() - t1
    print("RESULT " + json.dumps(res), flush=True)
""")


@pytest.mark.engine
def test_vllm_generates(tiny_model_dir: Path, tmp_path: Path) -> None:
    # A subprocess keeps vLLM (threads, signal handlers, its own torch settings) out of pytest.
    env = dict(os.environ, VLLM_ENABLE_V1_MULTIPROCESSING="0", OMP_NUM_THREADS="1",
               VLLM_CPU_KVCACHE_SPACE="1")
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", _VLLM_SCRIPT, str(tiny_model_dir)], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-6000:]
    res = json.loads(lines[-1].removeprefix("RESULT "))
    print(f"vLLM: {res}, wall {time.monotonic() - started:.1f}s")
    # 8 tokens each; prompt lengths include 16 image tokens / 2x16 video tokens + frame markers.
    assert res["text"][0] == res["image_chat"][0] == res["video"][0] == 8
    assert res["image_chat"][1] == 26
    assert res["video"][1] > 32
