"""Canaries and copyright traps: secret sequences planted before publication, tested later by an exact rank
test against their never-published siblings (``make``, ``plant``, ``ranks``; the test is
:func:`llm_mia.workflows.canary.run_canary_test`)."""
