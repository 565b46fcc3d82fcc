"""``python -m emolog ...`` = the ``emolog`` command; torchrun starts ranks this way
(``torchrun --nproc-per-node N -m emolog cache build ...``)."""

import sys

from emolog.cli import main

if __name__ == "__main__":
    sys.exit(main())
