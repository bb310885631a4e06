"""Errors the Saleor provider raises: one readable line naming the operation, the field and the code."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One error as Saleor reports it (mutation errors[], a top-level error, or an HTTP 400 body)."""

    field: str
    code: str
    message: str

    def render(self) -> str:
        text = f"field {self.field!r} code {self.code}"
        return f"{text}: {self.message}" if self.message else text


class SaleorError(Exception):
    """Saleor refused an operation. `errors` keeps the structured form for callers that branch on codes."""

    def __init__(self, operation: str, errors: list[FieldError], hint: str = "") -> None:
        self.operation = operation
        self.errors = errors
        detail = "; ".join(e.render() for e in errors) or "no detail"
        super().__init__(f"Saleor {operation} failed: {detail}" + (f" ({hint})" if hint else ""))

    @property
    def codes(self) -> set[str]:
        return {e.code for e in self.errors}


class SaleorUnavailable(Exception):
    """Saleor could not be reached (connection errors, 5xx) within the configured attempts and deadline."""
