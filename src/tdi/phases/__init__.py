"""The phases of a run: preflight, converge, verify, parity, and what each needs (the
repo's secrets, its prompts, the noise file, why a converge failed).
"""
