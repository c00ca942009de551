"""The wire, shared by every side that speaks to a program (docs/wire-protocol.md).

``_process`` starts a candidate program in a process group of its own and exchanges lines with
it, each within a deadline, and kills it with everything it started; ``_messages`` is the
envelope (one checked JSON object per line); ``_client`` is the harness's half (hello, one
request and the calls it makes, the HANG/CRASH/PROTOCOL faults, bye) and ``_connection`` the
transport of a Python server's half. What the lines say is each side's own protocol: the core's
client, messages and server are ``conformance.core._wire``, ``_wire_messages`` and
``_wire_server``; the driver's are ``conformance.driver._wire`` and ``_wire_server``
(``hmm-conformance serve --side driver``).
"""
