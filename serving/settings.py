"""Server configuration: one pydantic-settings object, filled from `thinkcap serve` flags or
`THINKCAP_*` environment variables (flags win). vLLM's own engine arguments are not here: they
pass through to `AsyncEngineArgs` untouched (see `serving/cli.py`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

EFFORTS = ("low", "medium", "high")


class MediaLimits(BaseSettings):
    """Bounds on what one request may make the server fetch and decode."""

    model_config = SettingsConfigDict(env_prefix="THINKCAP_", extra="ignore")

    max_images_per_request: int = Field(8, ge=0)
    max_videos_per_request: int = Field(2, ge=0)
    # Checked before decoding, so a decompression bomb is refused instead of exhausting memory.
    image_max_pixels: int = Field(4096 * 4096, ge=1)
    video_fps: float = Field(2.0, gt=0, description="frames sampled per second of video")
    video_max_frames: int = Field(32, ge=2)
    video_max_duration_s: float = Field(600.0, gt=0)
    fetch_timeout_s: float = Field(10.0, gt=0)
    fetch_max_bytes: int = Field(64 * 1024 * 1024, ge=1)
    allowed_local_media_path: Path | None = None

    @field_validator("allowed_local_media_path")
    @classmethod
    def _resolve(cls, value: Path | None) -> Path | None:
        # Resolved once: a request path is allowed only if it resolves inside this folder.
        return value.expanduser().resolve() if value is not None else None


class ServerSettings(BaseSettings):
    """Everything the HTTP layer needs to know that is not the engine."""

    model_config = SettingsConfigDict(env_prefix="THINKCAP_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    model: str = ""  # path or hub name; filled by the CLI (the tiny model when none is given)
    served_model_name: str | None = None
    api_key: str | None = None
    # None = unlimited unless the request says otherwise.
    default_think_budget: int | None = Field(None, ge=0)
    # Tokens the answer keeps after a forced close: the budget shrinks to leave them in max_tokens.
    answer_reserve: int = Field(16, ge=0)
    reasoning_effort_budgets: dict[str, int] = Field(
        default_factory=lambda: {"low": 256, "medium": 1024, "high": 4096}
    )
    max_n: int = Field(16, ge=1, description="largest `n` a request may ask for")
    media: MediaLimits = Field(default_factory=MediaLimits)

    @field_validator("reasoning_effort_budgets")
    @classmethod
    def _check_efforts(cls, table: dict[str, int]) -> dict[str, int]:
        unknown = set(table) - set(EFFORTS)
        if unknown:
            raise ValueError(f"unknown reasoning efforts {sorted(unknown)}; use {', '.join(EFFORTS)}")
        if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in table.values()):
            raise ValueError(f"reasoning effort budgets must be integers >= 0; got {table}")
        return table

    @property
    def model_name(self) -> str:
        """The id clients send as `model` and see in `/v1/models`."""
        return self.served_model_name or self.model


def parse_effort_table(text: str) -> dict[str, int]:
    """`low=256,medium=1024,high=4096` → dict (the CLI's format; env vars may use JSON)."""
    table: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep or not value.strip().isdigit():
            raise ValueError(f"expected NAME=INT pairs like low=256,medium=1024; got {item!r}")
        table[name.strip()] = int(value)
    return table
