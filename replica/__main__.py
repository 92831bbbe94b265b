import sys

from replica.cli import main

sys.exit(main())
