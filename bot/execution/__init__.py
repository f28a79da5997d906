"""Running a claimed task: the worker's lifecycle, the agent run, publishing and failure actions."""
