"""Mutation testing of hmm_ref's core with the conformance suite as the test (see test_kills)."""
