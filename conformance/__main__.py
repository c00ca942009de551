"""``python -m conformance``: the same as the ``hmm-conformance`` command."""

import sys

from .cli import main

sys.exit(main())
