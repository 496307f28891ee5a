"""Every media reference in a request body, found by the shape of the content, not by the route.

vLLM reads media from content parts on many routes (chat, the chat batch, Responses, Messages,
`/tokenize`, `/v1/messages/count_tokens`, SageMaker's `/invocations`, the scale-out render routes)
and in several spellings (typed parts, untyped `{"image_url": ...}` parts, `image_pil` strings that
the HF processor fetches as URLs). Matching routes or dialects one by one missed some of them, so
the door walks the whole body of every POST and classifies every content part it finds:

- a part that names media thinkcap can check (`image_url`, `input_image`, `video_url`, an
  Anthropic `image` block with a `url` or `base64` source, an untyped part with `image_url`) becomes
  a `MediaRef` for the media gate, which fetches and checks it and hands vLLM a `data:` URL;
- a part that carries no fetchable media (text, thinking, tool blocks, inline audio, embeddings)
  passes;
- any other part (`image_pil`, `audio_url`, `input_file`, a type vLLM may add later) is refused
  with a 400 naming it: fail closed, so a new spelling cannot open a way around the gate.

Tool definitions and output grammars are not messages and are skipped (a JSON schema may well have
a property called `image_url`).
"""

from __future__ import annotations

from typing import Any

from serving.errors import APIError
from serving.media import MediaRef

# Content part types that name no media to fetch (vLLM's text-like parsers, Anthropic/Responses
# blocks, inline audio and embeddings, which vLLM itself gates behind --enable-mm-embeds).
PASS_TYPES = frozenset({
    "text", "thinking", "redacted_thinking", "input_text", "output_text", "refusal", "summary_text",
    "reasoning_text", "tool_reference", "tool_use", "tool_result", "input_audio",
    "image_embeds", "audio_embeds", "video_embeds", "prompt_embeds",
})
MEDIA_TYPES = ("image_url", "input_image", "video_url", "image")
# Top-level fields that hold schemas or options, never conversation content.
_NOT_CONTENT = frozenset({
    "tools", "functions", "tool_choice", "response_format", "structured_outputs", "guided_json",
    "text", "vllm_xargs", "metadata", "logit_bias", "chat_template_kwargs", "mm_processor_kwargs",
})
# Typed parts recognised outside content lists too (never a schema or option name).
_ANYWHERE_TYPES = frozenset({"image_url", "input_image", "video_url", "image_pil", "audio_url", "input_file"})
_UNTYPED_MEDIA_KEYS = ("image_pil", "image_embeds", "audio_url", "input_audio", "video_url", "audio_embeds")


def find_media(body: dict[str, Any]) -> list[MediaRef]:
    """The media parts of every content list in `body` (refusing parts the gate cannot check), in
    body order. Recursion depth is bounded: `check_request` refused deep bodies before this runs."""
    refs: list[MediaRef] = []
    for key, value in body.items():
        if key not in _NOT_CONTENT:
            _walk(value, key, refs)
    return refs


def _walk(value: Any, path: str, refs: list[MediaRef]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _walk(item, f"{path}.{key}", refs)
    elif isinstance(value, list):
        in_content = path == "content" or path.endswith(".content")
        for i, item in enumerate(value):
            where = f"{path}.{i}"
            # A content part, or a media-typed item anywhere else (Responses puts parts in `input`).
            if isinstance(item, dict) and (in_content or item.get("type") in _ANYWHERE_TYPES):
                ref = _part(item, where)
                if ref is not None:
                    refs.append(ref)
                    continue
            _walk(item, where, refs)


def _part(part: dict[str, Any], param: str) -> MediaRef | None:
    kind = part.get("type")
    if kind is None:
        if "image_url" in part:  # vLLM's untyped part: the URL as a string or {"url": ...}
            return _image_url(part, "image_url", param)
        bad = next((k for k in _UNTYPED_MEDIA_KEYS if k in part), None)
        if bad is not None:
            raise APIError(f"content part with {bad!r} needs a 'type'; send media as image_url or video_url",
                           param=param)
        return None
    if kind in PASS_TYPES:
        return None
    if kind == "image_url":
        return _image_url(part, "image_url", param)
    if kind == "video_url":
        return _image_url(part, "video_url", param, media="video")
    if kind == "input_image":  # Responses spelling: image_url is the URL itself
        if isinstance(part.get("image_url"), dict):
            return _image_url(part, "image_url", param)
        if "file_id" in part and "image_url" not in part:
            raise APIError("input_image with a file_id is not supported here; send image_url", param=param)
        return MediaRef("image", part, "image_url", param)
    if kind == "image":  # Anthropic: {"type": "image", "source": {"type": "url"|"base64", ...}}
        return _anthropic_image(part, param)
    raise APIError(f"content part type {kind!r} is not accepted by this server; media goes in "
                   f"{', '.join(MEDIA_TYPES)} parts (image_pil and audio parts cannot be checked by the media gate)",
                   param=param)


def _image_url(part: dict[str, Any], key: str, param: str, media: str = "image") -> MediaRef:
    holder = part.get(key)
    if isinstance(holder, str) or holder is None:  # vLLM also takes the URL as a bare string
        part[key] = holder = {"url": holder}
    if not isinstance(holder, dict):
        raise APIError(f"{key} must be an object with a url", param=param)
    return MediaRef(media, holder, "url", param)


def _anthropic_image(part: dict[str, Any], param: str) -> MediaRef:
    source = part.get("source")
    if not isinstance(source, dict):
        raise APIError("image block needs a source", param=param)
    if source.get("type") == "base64":  # checked like any data URL (pixel bombs travel inline too)
        mime, data = source.get("media_type"), source.get("data")
        if not isinstance(mime, str) or not isinstance(data, str):
            raise APIError("base64 image source needs media_type and data strings", param=param)
        part["source"] = source = {"type": "url", "url": f"data:{mime};base64,{data}"}
    if source.get("type") != "url":
        raise APIError(f"image source type {source.get('type')!r} is not supported; use url or base64", param=param)
    return MediaRef("image", source, "url", param)
