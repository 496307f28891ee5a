"""`thinkcap tiny-model DIR`: a tiny random-weight GLM-4.1V-Thinking checkpoint, built locally.

No hub is reachable, so tests, the demo and CPU serving run on a model we build ourselves: the real
`Glm4vForConditionalGeneration` architecture (vision tower, patch merger, M-RoPE text decoder) scaled
down to ~0.85M parameters, a ~1k-token byte-level BPE trained here on embedded text, the GLM special
tokens at single ids, and a GLM-4.1V chat template. It loads with transformers' Auto classes and with
vLLM. Everything is seeded, so two builds with one seed give byte-identical files.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

# Bump when the files built here change, so `ensure_tiny_model` caches never go stale.
TINY_MODEL_VERSION = 1
VOCAB_SIZE = 1024  # tokenizer length == embedding rows: random weights cannot emit an undecodable id

# GLM's order (ids 151329.. in the real tokenizer); here they follow the trained BPE vocabulary.
SPECIAL_TOKENS = [
    "<|endoftext|>", "[MASK]", "[gMASK]", "[sMASK]", "<sop>", "<eop>",
    "<|system|>", "<|user|>", "<|assistant|>", "<|observation|>",
    "<|begin_of_image|>", "<|end_of_image|>", "<|begin_of_video|>", "<|end_of_video|>",
    "<|image|>", "<|video|>",
]
# Like the real checkpoint these are added but *not* special: decoding with
# skip_special_tokens=True (vLLM's default) keeps them, so reasoning parsers can see them.
TEXT_MARKERS = ["<think>", "</think>", "<answer>", "</answer>", "<|begin_of_box|>", "<|end_of_box|>"]

# GLM-4's pre-tokenizer split (letters, 1-3 digit groups, punctuation runs, newlines, spaces).
_SPLIT_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

_CORPUS = """\
The quick brown fox jumps over the lazy dog. A picture shows a red square on a white background.
Let us think step by step. First, read the question carefully. Then check every assumption.
The answer is the number of apples left after Tom gives three of them to his sister.
If a train travels 60 kilometres in one hour, how far does it travel in two and a half hours?
We multiply the speed by the time: 60 * 2.5 = 150, so the train travels 150 kilometres.
The area of a circle with radius r is pi times r squared; the circumference is 2 * pi * r.
Solve for x: 3x + 5 = 20. Subtract 5 from both sides to get 3x = 15, then divide by 3: x = 5.
A triangle has angles that add up to 180 degrees. A square has four equal sides and four right angles.
What colour is the sky on a clear day? It is blue. What is in the image? There is a cat on a mat.
The video shows a ball rolling from the left to the right, then stopping near the wall.
Therefore the final answer is 42. Wait, let me verify this result once more before answering.
Compute the sum of the first ten positive integers: 1 + 2 + 3 + 4 + 5 + 6 + 7 + 8 + 9 + 10 = 55.
The probability of rolling an even number with a fair six-sided die is 3 / 6 = 1 / 2 = 0.5.
Hello! How can I help you today? Please describe the chart, the table and the diagram in detail.
In the first frame the person is standing; in the second frame the person is sitting down.
The derivative of x^2 is 2x, and the integral of 2x dx is x^2 + C. The limit of 1/n is 0.
Hmm, that does not look right. Let me reconsider: the ratio 4 : 8 simplifies to 1 : 2.
Once upon a time, a small robot learned to count the stars above the quiet mountain village.
Every morning she walked to the market, bought bread, milk and eggs, and paid with coins.
The table lists the population of five cities; the largest city has about two million people.
Water boils at 100 degrees Celsius and freezes at 0 degrees at normal atmospheric pressure.
Which option is correct: (A), (B), (C) or (D)? Option (C) is correct because it satisfies both rules.
The graph of y = 2x + 1 is a straight line with slope 2 and intercept 1 on the vertical axis.
A prime number has exactly two divisors: 2, 3, 5, 7, 11, 13, 17, 19, 23 and 29 are primes.
The mean of 4, 8 and 12 is 8; the median is also 8, and the range is 12 - 4 = 8.
She opened the window, looked outside, and noticed that the garden was covered with snow.
Photosynthesis converts sunlight, water and carbon dioxide into sugar and oxygen in green plants.
To convert minutes into hours, divide by sixty; to convert hours into seconds, multiply by 3600.
Our model should explain its reasoning briefly, then give a short and clear final answer.
The box contains seven blue marbles, five green marbles and eight yellow marbles in total.
Look at the left side of the photo: a dog is sleeping under a wooden chair near the door.
Question: how many legs do three spiders have? Each spider has eight legs, so 3 * 8 = 24.
The percentage increase from 80 to 100 is (100 - 80) / 80 = 0.25, which equals 25 percent.
Geometry, algebra, calculus, statistics and logic are important branches of mathematics.
Remember to double-check units, signs and rounding when you write down numerical answers.
Yesterday it rained heavily, but today the weather is sunny, warm and perfect for a walk.
The function f(x) = x^3 - x has zeros at x = -1, x = 0 and x = 1, and it is an odd function.
"""


def _corpus() -> list[str]:
    # Plus generated arithmetic so digits, operators and "=" get merges of their own.
    maths = [f"{a} + {b} = {a + b}. {a} * {b} = {a * b}. {a * b} / {b} = {a}."
             for a in range(20) for b in range(1, 20)]
    return _CORPUS.splitlines() + maths


# GLM-4.1V-9B-Thinking's template, same output, plus: "image_url"/"video_url" parts (OpenAI-style
# messages), list content for system/assistant, and earlier assistant turns reduced to the text
# after </think> (the model was trained without past reasoning in context).
CHAT_TEMPLATE = """\
{%- macro render(content) -%}
{%- if content is string -%}{{ content }}
{%- elif content is not none -%}{%- for item in content -%}
{%- if item.type in ('video', 'video_url') or 'video' in item or 'video_url' in item -%}
<|begin_of_video|><|video|><|end_of_video|>
{%- elif item.type in ('image', 'image_url') or 'image' in item or 'image_url' in item -%}
<|begin_of_image|><|image|><|end_of_image|>
{%- elif item.type == 'text' -%}{{ item.text }}
{%- endif -%}{%- endfor -%}
{%- endif -%}
{%- endmacro -%}
[gMASK]<sop>
{%- for msg in messages -%}
{%- if msg.role == 'system' -%}<|system|>{{ '\\n' }}{{ render(msg.content) }}
{%- elif msg.role == 'user' -%}<|user|>{{ '\\n' }}{{ render(msg.content) }}
{%- elif msg.role in ('observation', 'tool') -%}<|observation|>{{ '\\n' }}{{ render(msg.content) }}
{%- elif msg.role == 'assistant' -%}
{%- set content = render(msg.content) -%}
{%- if '</think>' in content -%}{%- set content = content.split('</think>')[-1].strip() -%}{%- endif -%}
<|assistant|>{{ msg.metadata if msg.metadata else '' }}{{ '\\n' }}{{ content }}
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}<|assistant|>{{ '\\n' }}{%- endif -%}
"""


def _build_tokenizer():
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(_SPLIT_REGEX), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    n_added = len(SPECIAL_TOKENS) + len(TEXT_MARKERS)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE - n_added,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes: any text encodes
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in TEXT_MARKERS])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        padding_side="left",  # batched generation (GRPO rollouts) pads on the left
        clean_up_tokenization_spaces=False,
        model_max_length=4096,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def _build_config(tokenizer):
    from transformers import Glm4vConfig

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    eos = [ids["<|endoftext|>"], ids["<|user|>"], ids["<|observation|>"]]
    text = dict(
        vocab_size=len(tokenizer), hidden_size=128, intermediate_size=256, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
        # As in GLM-4.1V: rotary on half of head_dim (32 -> 16), so mrope_section sums to 16 / 2 = 8
        # (real model: head_dim 128, [8, 12, 12]); vLLM's Glm4 layer assumes the same 0.5 factor.
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5,
                         "mrope_section": [2, 3, 3]},
        pad_token_id=ids["<|endoftext|>"], eos_token_id=eos, dtype="bfloat16",
    )
    vision = dict(
        depth=2, hidden_size=64, num_heads=4, out_hidden_size=128, intermediate_size=128,
        patch_size=14, spatial_merge_size=2, temporal_patch_size=2,
        image_size=112,  # learned position grid 8x8, interpolated for other sizes as in the real model
    )
    config = Glm4vConfig(
        text_config=text, vision_config=vision,
        image_token_id=ids["<|image|>"], video_token_id=ids["<|video|>"],
        image_start_token_id=ids["<|begin_of_image|>"], image_end_token_id=ids["<|end_of_image|>"],
        video_start_token_id=ids["<|begin_of_video|>"], video_end_token_id=ids["<|end_of_video|>"],
        pad_token_id=ids["<|endoftext|>"], eos_token_id=eos,
    )
    # bfloat16 like the real checkpoint: vLLM's CPU backend downcasts float32 to bf16 anyway, so
    # storing bf16 means HF and vLLM run identical weights (load with dtype=float32 to train in fp32).
    config.dtype = "bfloat16"
    config.architectures = ["Glm4vForConditionalGeneration"]
    return config, eos


def _build_processor(tokenizer):
    from transformers import Glm4vImageProcessor, Glm4vProcessor, Glm4vVideoProcessor

    # `size` is a pixel *area* bound on t*h*w (t = 2 for an image): 2*112*112 caps an image at 8x8
    # patches = 16 tokens after the 2x2 merge; a 4-frame 112x112 clip is 2 x 16 = 32 tokens, longer
    # clips shrink per frame (down to 28x28 = 1 token per frame pair).
    image = Glm4vImageProcessor(size={"shortest_edge": 56 * 56 * 2, "longest_edge": 112 * 112 * 2})
    video = Glm4vVideoProcessor(
        size={"shortest_edge": 56 * 56 * 2, "longest_edge": 112 * 112 * 4},
        max_image_size={"longest_edge": 112 * 112 * 4}, fps=2,
    )
    return Glm4vProcessor(image_processor=image, tokenizer=tokenizer, video_processor=video,
                          chat_template=CHAT_TEMPLATE)


def build_tiny_model(out_dir: str | Path, seed: int = 0) -> Path:
    """Write the tiny model (config, safetensors, tokenizer, processors) into `out_dir`."""
    import torch
    from transformers import GenerationConfig, Glm4vForConditionalGeneration

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _build_tokenizer()
    config, eos = _build_config(tokenizer)
    with torch.random.fork_rng(devices=[]):  # seed locally; leave the caller's RNG alone
        torch.manual_seed(seed)
        # Initialise in float32 (deterministic init kernels), then store bf16.
        model = Glm4vForConditionalGeneration(config).to(torch.bfloat16).eval()
    model.generation_config = GenerationConfig(
        eos_token_id=eos, pad_token_id=config.text_config.pad_token_id, do_sample=False)
    model.save_pretrained(out, safe_serialization=True)
    processor = _build_processor(tokenizer)
    processor.save_pretrained(out)
    # Stand-alone files too: vLLM and older loaders read preprocessor_config.json /
    # video_preprocessor_config.json directly rather than the processor's nested config.
    processor.image_processor.save_pretrained(out)
    processor.video_processor.save_pretrained(out)
    tokenizer.save_pretrained(out)  # tokenizer.json, tokenizer_config.json, chat_template.jinja
    # transformers 5 writes its alias "TokenizersBackend"; the classic name loads in 4.x and 5.x.
    tok_cfg_path = out / "tokenizer_config.json"
    tok_cfg = json.loads(tok_cfg_path.read_text())
    tok_cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    tok_cfg_path.write_text(json.dumps(tok_cfg, indent=2, sort_keys=True) + "\n")
    return out


def default_model_dir() -> Path:
    """Where `ensure_tiny_model` keeps its build: $THINKCAP_HOME or ~/.cache/thinkcap."""
    home = os.environ.get("THINKCAP_HOME") or Path.home() / ".cache" / "thinkcap"
    return Path(home) / f"tiny-glm4v-v{TINY_MODEL_VERSION}"


def _install(tmp: Path, final: Path) -> None:
    """Rename `tmp` to `final`; if someone else got there first, keep theirs."""
    try:
        os.rename(tmp, final)  # atomic on one filesystem; fails if final exists and is non-empty
    except OSError:
        if not (final / "config.json").exists():
            raise
        shutil.rmtree(tmp, ignore_errors=True)


def ensure_tiny_model(seed: int = 0) -> Path:
    """Return `default_model_dir()`, building it first if absent. Safe with concurrent callers:
    each builds in its own temp dir beside the target and renames it into place."""
    final = default_model_dir()
    if (final / "config.json").exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        build_tiny_model(tmp, seed=seed)
        _install(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="thinkcap tiny-model", description=__doc__.splitlines()[0])
    parser.add_argument("dir", metavar="DIR", help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="weight-init seed (default 0)")
    parser.add_argument("--force", action="store_true", help="replace DIR if it is not empty")
    args = parser.parse_args(argv)

    out = Path(args.dir)
    if out.exists() and any(out.iterdir()) and not args.force:
        print(f"thinkcap tiny-model: {out} is not empty (use --force to replace it)")
        return 1
    if out.exists() and args.force:
        shutil.rmtree(out)
    build_tiny_model(out, seed=args.seed)
    size = sum(f.stat().st_size for f in out.glob("*.safetensors"))
    print(f"built tiny GLM-4.1V (seed {args.seed}, {size / 1e6:.1f} MB weights) in {out}")
    return 0
