"""Start ``dagster dev`` with SIGINT/SIGTERM restored to their defaults.

A backgrounded ``dagster dev`` inherits ignored signals from the shell and then ignores them;
exec'ing it from here with SIG_DFL makes it stoppable by its process id.
"""

import os
import signal
import sys

for sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(sig, signal.SIG_DFL)
os.execvp(sys.argv[1], sys.argv[1:])
