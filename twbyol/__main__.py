import sys

from twbyol.cli import main

sys.exit(main())
