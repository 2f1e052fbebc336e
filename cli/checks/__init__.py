"""CI trace checks: built-in invariants, expectation files, their evaluation and reports.

Everything here is a view of the decision stream (plus, for byte conservation and the overshoot
bound, the global budget's probe hook); nothing changes what the model decides.
"""
