"""``python -m attnkit.bench``: see :mod:`attnkit.bench.runner`."""

import sys

from .runner import main

sys.exit(main())
