"""``python -m mmzoo`` runs the ``mmzoo`` command (where the console script is not on PATH)."""

import sys

from mmzoo.cli import main

if __name__ == "__main__":
    sys.exit(main())
