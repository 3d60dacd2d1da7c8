"""The work item message: one page of one partition of a run."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator


class WorkItem(BaseModel):
    """Everything a worker needs to fetch one page, and nothing it must look up."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    feed: str
    run_id: str
    partition_id: int = Field(ge=0)
    price_min_cents: int = Field(ge=0)
    price_max_cents: int | None = Field(default=None, ge=0)
    expected_count: int = Field(ge=0)
    offset: int = Field(ge=0)
    page_size: int = Field(ge=1, le=50)
    updated_from: datetime
    updated_to: datetime
    trace_id: str
    pass_number: int = Field(default=1, ge=1)

    @field_validator("feed", "run_id", "trace_id")
    @classmethod
    def _reject_nul(cls, value: str) -> str:
        # PostgreSQL text rejects NUL, so such an item could never be processed;
        # rejecting it here records it as malformed instead of redelivering it.
        if "\x00" in value:
            raise ValueError("contains a NUL character")
        return value

    @property
    def message_id(self) -> str:
        """Deterministic id, so a duplicate send is dropped by duplicate detection."""
        base = f"{self.run_id}:{self.partition_id}:{self.offset}"
        return base if self.pass_number == 1 else f"{base}:p{self.pass_number}"

    def next_page(self, offset: int) -> WorkItem:
        return self.model_copy(update={"offset": offset})

    def to_body(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_body(cls, body: bytes | str) -> WorkItem:
        return cls.model_validate_json(body)
