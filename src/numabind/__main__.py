import sys

from numabind.cli import main

sys.exit(main())
