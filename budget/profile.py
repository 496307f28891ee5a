"""Model profiles: which token ids open and close thinking, what to force, what ends a response.

A profile is built from a tokenizer (anything with `get_vocab()` or `convert_tokens_to_ids`), so
this module stays free of transformers. Families differ only in the closing sequence:

- GLM-4.1V-Thinking: `<think>...</think><answer>...</answer>` → force `</think><answer>`.
- GLM-4.5V: `<think>...</think>` then the answer → force `</think>`.
- generic `<think>`/`</think>` models (Qwen3, DeepSeek-R1, ...) → force `</think>`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class ProfileError(ValueError):
    """The model has no thinking tokens we know how to drive."""


@dataclass(frozen=True)
class FamilySpec:
    """Token strings of one model family; `closing` is forced when the budget runs out."""

    name: str
    think_open: str
    think_close: str
    closing: tuple[str, ...]
    eos: tuple[str, ...] = ()
    answer_open: str | None = None
    answer_close: str | None = None
    box_open: str | None = None
    box_close: str | None = None


FAMILIES: dict[str, FamilySpec] = {
    "glm4.1v": FamilySpec(
        name="glm4.1v",
        think_open="<think>",
        think_close="</think>",
        closing=("</think>", "<answer>"),
        eos=("<|endoftext|>", "<|user|>", "<|observation|>"),
        answer_open="<answer>",
        answer_close="</answer>",
        box_open="<|begin_of_box|>",
        box_close="<|end_of_box|>",
    ),
    "glm4.5v": FamilySpec(
        name="glm4.5v",
        think_open="<think>",
        think_close="</think>",
        closing=("</think>",),
        eos=("<|endoftext|>", "<|user|>", "<|observation|>"),
        box_open="<|begin_of_box|>",
        box_close="<|end_of_box|>",
    ),
    "generic": FamilySpec(name="generic", think_open="<think>", think_close="</think>", closing=("</think>",)),
}

# Hugging Face `config.model_type` → family. Unknown types fall back to detection from the vocab.
MODEL_TYPES: dict[str, str] = {"glm4v": "glm4.1v", "glm4v_moe": "glm4.5v"}


@dataclass(frozen=True)
class ThinkProfile:
    """Token ids the budget mechanism needs for one model. Immutable and cheap to share."""

    family: str
    think_open_id: int
    think_close_id: int
    closing_ids: tuple[int, ...]
    eos_token_ids: frozenset[int] = field(default_factory=frozenset)
    answer_open_id: int | None = None
    answer_close_id: int | None = None
    box_open_id: int | None = None
    box_close_id: int | None = None
    # The id that stops a response (`think_budget_action: truncate`); default: the lowest EOS id.
    stop_id: int | None = None
    # Ids whose text ends a sentence, line or step: natural places to close inside the grace window.
    boundary_ids: frozenset[int] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if not self.closing_ids or self.closing_ids[0] != self.think_close_id:
            raise ProfileError("closing_ids must start with the think-close id")
        if self.stop_id is None and self.eos_token_ids:
            object.__setattr__(self, "stop_id", min(self.eos_token_ids))


def _vocab(tokenizer: Any) -> dict[str, int]:
    vocab = dict(tokenizer.get_vocab())
    # Added/special tokens are not always in get_vocab() (slow tokenizers); ask for them directly.
    added = getattr(tokenizer, "get_added_vocab", None)
    if callable(added):
        vocab.update(added())
    return vocab


_SENTENCE_ENDS = frozenset(".!?;。！？；")


def _byte_decoder() -> dict[str, int]:
    """GPT-2 byte-level BPE's printable-character alphabet, reversed (char → byte)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, n = list(printable), 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(printable, chars)}


def token_text(token: str, decoder: dict[str, int]) -> str:
    """A vocabulary string as text: byte-level BPE (`Ġ`, `Ċ`), SentencePiece (`▁`, `<0x0A>`) or plain."""
    if token.startswith("<0x") and token.endswith(">") and len(token) == 6:
        return chr(int(token[3:5], 16))
    if all(c in decoder for c in token):
        return bytes(decoder[c] for c in token).decode("utf-8", errors="ignore")
    return token.replace("▁", " ")


def boundary_ids(vocab: dict[str, int], special: set[str] = frozenset()) -> frozenset[int]:
    """Ids whose text ends a sentence, a line or a step: a newline anywhere in it, or (trailing
    spaces aside) a final `.`, `!`, `?`, `;` or their CJK forms. Read from the vocabulary once per
    model, so no tokenizer needs a hand-written list."""
    decoder = _byte_decoder()
    out = set()
    for token, i in vocab.items():
        if token in special:
            continue
        text = token_text(token, decoder)
        tail = text.rstrip(" ")
        if "\n" in text or (tail and tail[-1] in _SENTENCE_ENDS):
            out.add(i)
    return frozenset(out)


def detect_family(vocab: dict[str, int], model_type: str | None = None) -> str:
    if model_type in MODEL_TYPES:
        return MODEL_TYPES[model_type]
    if "<think>" not in vocab or "</think>" not in vocab:
        raise ProfileError(
            "this model's tokenizer has no single-token <think> and </think>, so a thinking budget "
            f"cannot be applied (model_type={model_type!r}); pass a profile family explicitly "
            f"({', '.join(FAMILIES)}) only if the model really thinks in that format"
        )
    if "<answer>" in vocab and "</answer>" in vocab:
        return "glm4.1v"
    return "generic"


def build_profile(
    tokenizer: Any,
    family: str | None = None,
    model_type: str | None = None,
    extra_eos_ids: tuple[int, ...] = (),
) -> ThinkProfile:
    """Build a profile from a tokenizer. `family` forces one; else it comes from `model_type`/the vocab."""
    vocab = _vocab(tokenizer)
    if family is None:
        family = detect_family(vocab, model_type)
    if family not in FAMILIES:
        raise ProfileError(f"unknown profile family {family!r}; known: {', '.join(FAMILIES)}")
    spec = FAMILIES[family]
    needed = {spec.think_open, spec.think_close, *spec.closing}
    missing = sorted(t for t in needed if t not in vocab)
    if missing:
        raise ProfileError(f"profile {family!r} needs tokens the tokenizer lacks: {missing}")

    def opt(token: str | None) -> int | None:
        return vocab.get(token) if token else None

    eos = {vocab[t] for t in spec.eos if t in vocab}
    eos_id = getattr(tokenizer, "eos_token_id", None)
    if isinstance(eos_id, int):
        eos.add(eos_id)
    eos.update(extra_eos_ids)
    added = getattr(tokenizer, "get_added_vocab", None)
    special = set(added()) if callable(added) else set()
    return ThinkProfile(
        family=family,
        think_open_id=vocab[spec.think_open],
        think_close_id=vocab[spec.think_close],
        closing_ids=tuple(vocab[t] for t in spec.closing),
        eos_token_ids=frozenset(eos),
        answer_open_id=opt(spec.answer_open),
        answer_close_id=opt(spec.answer_close),
        box_open_id=opt(spec.box_open),
        box_close_id=opt(spec.box_close),
        stop_id=eos_id if isinstance(eos_id, int) else (min(eos) if eos else None),
        boundary_ids=boundary_ids(vocab, special),
    )
