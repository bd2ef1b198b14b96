import sys

from melange_bk.cli.main import main

sys.exit(main())
