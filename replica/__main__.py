from replica.cli import main
import sys

sys.exit(main())
