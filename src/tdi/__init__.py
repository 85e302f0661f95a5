"""tdi: test infrastructure code on a fresh host and an upgraded host, and diff the two."""

from __future__ import annotations

__version__ = "0.1.0"
