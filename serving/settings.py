"""thinkcap's own server settings (the budget layer and media gate); every other flag is vLLM's.

Filled from `thinkcap serve` flags, or `THINKCAP_*` environment variables (flags win). The
settings travel to every API-server process inside vLLM's argument namespace.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from budget.hint import BudgetHint
from serving.limits import RequestLimits

# Every `reasoning_effort` OpenAI defines; `none` is always budget 0.
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
DEFAULT_EFFORT_BUDGETS = {"none": 0, "minimal": 64, "low": 256, "medium": 1024, "high": 4096, "xhigh": 16384}


class MediaLimits(BaseSettings):
    """Bounds on what one request may make the server fetch and decode (checked before vLLM)."""

    model_config = SettingsConfigDict(env_prefix="THINKCAP_", extra="ignore")

    max_images_per_request: int = Field(8, ge=0)
    max_videos_per_request: int = Field(2, ge=0)
    # Checked from the header before decoding, so a decompression bomb is refused.
    image_max_pixels: int = Field(4096 * 4096, ge=1)
    video_max_duration_s: float = Field(600.0, gt=0)
    fetch_timeout_s: float = Field(10.0, gt=0)
    fetch_max_bytes: int = Field(64 * 1024 * 1024, ge=1)
    allowed_local_media_path: Path | None = None
    # SSRF rules (serving.media_fetch): only public addresses unless opted out; exact host names.
    allow_private_media_urls: bool = False
    allowed_media_domains: list[str] | None = None
    max_redirects: int = Field(5, ge=0)

    @field_validator("allowed_local_media_path")
    @classmethod
    def _resolve(cls, value: Path | None) -> Path | None:
        # Resolved once: a request path is allowed only if it resolves inside this folder.
        return value.expanduser().resolve() if value is not None else None

    @field_validator("allowed_media_domains")
    @classmethod
    def _domains(cls, value: list[str] | None) -> list[str] | None:
        # Compared with the URL's host name, which urlsplit lowercases and we strip of a final dot.
        return [d.strip().lower().rstrip(".") for d in value if d.strip()] if value is not None else None


class ServerSettings(BaseSettings):
    """What thinkcap's layer needs beyond vLLM's own arguments."""

    model_config = SettingsConfigDict(env_prefix="THINKCAP_", extra="ignore")

    # None = unlimited unless the request says otherwise.
    default_think_budget: int | None = Field(None, ge=0)
    # Tokens the answer keeps after a forced close: the budget shrinks to leave them in max_tokens.
    answer_reserve: int = Field(16, ge=0)
    # A grammar-constrained answer (JSON schema, required/named tool call) needs more room than prose.
    structured_answer_reserve: int = Field(256, ge=0)
    reasoning_effort_budgets: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_EFFORT_BUDGETS))
    max_n: int = Field(16, ge=1, description="largest `n` a request may ask for")
    # Set by `thinkcap serve` when the chat template it installed ends the generation prompt with `<think>`.
    prompt_opens_thinking: bool = False
    # The budget hint shown to the model (budget.hint): a template with one {budget}; None = off.
    # `thinkcap serve POLICY_DIR` takes the one the policy was trained with (thinkcap_policy.json).
    # Budget controls (issue 20), each a per-request field too: see docs/api.md.
    think_budget_grace: int = Field(0, ge=0)  # tokens thinking may go past the budget to a boundary
    think_budget_message: str | None = None  # wrap-up text forced before the closing sequence
    think_budget_action: Literal["force", "truncate"] = "force"
    think_budget_scope: Literal["request", "turn"] = "request"  # turn: earlier steps' thinking is spent
    answer_required: bool = True  # an EOS inside the thought becomes the close; no empty answer
    budget_hint: str | None = None
    media: MediaLimits = Field(default_factory=MediaLimits)
    limits: RequestLimits = Field(default_factory=RequestLimits)

    @field_validator("budget_hint")
    @classmethod
    def _check_hint(cls, template: str | None) -> str | None:
        if template is not None:
            BudgetHint(template)  # raises with what to change
        return template

    def hint(self) -> BudgetHint | None:
        return None if self.budget_hint is None else BudgetHint(self.budget_hint)

    @field_validator("reasoning_effort_budgets")
    @classmethod
    def _check_efforts(cls, table: dict[str, int]) -> dict[str, int]:
        unknown = set(table) - set(EFFORTS)
        if unknown:
            raise ValueError(f"unknown reasoning efforts {sorted(unknown)}; use {', '.join(EFFORTS)}")
        if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in table.values()):
            raise ValueError(f"reasoning effort budgets must be integers >= 0; got {table}")
        if table.get("none", 0) != 0:
            raise ValueError("reasoning_effort 'none' means no thinking: its budget is always 0")
        return {**DEFAULT_EFFORT_BUDGETS, **table}


def parse_effort_table(text: str) -> dict[str, int]:
    """`low=256,medium=1024,high=4096` → dict (the CLI's format; env vars may use JSON)."""
    table: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep or not value.strip().isdigit():
            raise ValueError(f"expected NAME=INT pairs like low=256,medium=1024; got {item!r}")
        table[name.strip()] = int(value)
    return table
