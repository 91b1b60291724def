"""``python -m core`` is the same CLI as the ``initlab`` console script."""

import sys

from core.cli import main

sys.exit(main())
