"""The wire's transport, shared by every side that speaks to a program (docs/wire-protocol.md).

``_process`` starts a candidate program in a process group of its own and exchanges lines with
it, each within a deadline, and kills it with everything it started. What the lines say is the
side's own protocol: the core's is ``conformance.core._wire`` (the client),
``conformance.core._wire_messages`` and ``conformance.core._wire_server``
(``hmm-conformance serve``).
"""
