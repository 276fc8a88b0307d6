"""The example repository's tasks, for running `doit` from a checkout of atmos-tasks itself.

A user repository holds only `from atmos_tasks.dodo import *`; this file points doit at the
bundled `examples/` folder so `doit -f dodo.py list` works here too.
"""

import os

os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "examples"))

from atmos_tasks.dodo import *  # noqa: E402,F403
