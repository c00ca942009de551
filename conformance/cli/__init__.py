"""The ``hmm-conformance`` command line: :func:`main`, one module per command.

``main(argv, stdout=, stderr=)`` returns the exit code: 0 the candidate conforms (or the
command succeeded), 1 a rule was violated (or the candidate crashed, hung or broke the
protocol), 2 a usage or setup error, said as one line on stderr that names the problem and the
fix, 130 or 143 when SIGINT or SIGTERM stopped it. Each command (``run``, ``replay``,
``explore``, ``catalogue``, ``demo``, ``scenario``, ``serve``) is a module here that reads its
arguments into frozen options; ``run`` and ``replay`` work on any side of the registry
(:mod:`conformance._sides`).
"""

from ._main import main

__all__ = ["main"]
