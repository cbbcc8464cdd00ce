import sys

from climode.cli.main import main

sys.exit(main())
