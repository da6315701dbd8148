"""`python -m pipeline <command>`: the command line lives in `pipeline.ops.cli`."""

import sys

from pipeline.ops.cli import main

sys.exit(main())
