"""``python -m zocalo_nb.cli``."""

import sys

from zocalo_nb.cli import main

sys.exit(main())
