# Every deployment in deployments/ becomes doit tasks: `doit list`, `doit rollout:api:dev`.
from atmos_tasks.dodo import *  # noqa: F403
