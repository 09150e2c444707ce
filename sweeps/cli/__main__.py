"""``python -m sweeps.cli``: the ``ablate`` command."""
import sys

from .main import main

sys.exit(main())
