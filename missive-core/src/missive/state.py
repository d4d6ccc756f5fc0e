"""Free-form state carried by processing and handling contexts."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class State:
    """A namespace that hooks and handlers use to pass values along.

    Set any attribute on it; reading an attribute that was never set raises an
    ``AttributeError`` that names the attribute.  A processing context's state
    lives for the whole run of an adapter, a handling context's state for one
    message.
    """

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails, i.e. the attribute was never set.
        raise AttributeError(f"state has no attribute {name!r}; set it first")

    def __repr__(self) -> str:
        items = ", ".join(f"{key}={value!r}" for key, value in vars(self).items())
        return f"State({items})"
