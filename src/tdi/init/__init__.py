"""`tdi init`: what a repo holds (survey), and what tdi writes into it (scaffold,
templates).
"""
