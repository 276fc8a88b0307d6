"""atmos-tasks: Git-tracked deployment orchestration on doit."""

__version__ = "0.1.0"
