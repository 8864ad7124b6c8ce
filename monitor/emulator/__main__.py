import sys

from monitor.emulator.cli import main

sys.exit(main(sys.argv[1:]))
