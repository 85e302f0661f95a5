"""The pipelines: what `tdi test`, `tdi snapshot` and `tdi calibrate` do from start to end,
over the phases.
"""
