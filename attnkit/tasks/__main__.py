"""``python -m attnkit.tasks``: see :mod:`attnkit.tasks.cli`."""

import sys

from .cli import main

sys.exit(main())
