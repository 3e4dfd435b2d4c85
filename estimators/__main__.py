import sys

from estimators.cli import main

sys.exit(main())
