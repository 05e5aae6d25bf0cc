import faulthandler
import signal
import sys

from .cli import main

faulthandler.register(signal.SIGUSR1, all_threads=True)  # a run that seems stuck: kill -USR1 PID
sys.exit(main())
