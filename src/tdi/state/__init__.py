"""The state of a converged host: capture it in a container, and diff two captures."""

from __future__ import annotations

from tdi.errors import CaptureError
from tdi.state.capture import State, capture
from tdi.state.diff import Difference, diff, id_warnings

__all__ = ["CaptureError", "Difference", "State", "capture", "diff", "id_warnings"]
