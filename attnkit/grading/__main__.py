"""``python -m attnkit.grading``: see :mod:`attnkit.grading.cli`."""

import sys

from .cli import main

sys.exit(main())
