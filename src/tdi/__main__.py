"""`python -m tdi`: how `tdi test --all` starts each scenario's tdi, with its own code."""

from __future__ import annotations

import sys

from tdi.cli import main

sys.exit(main())
