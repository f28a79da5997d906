"""Pure rules, no I/O: task states, failures, dependencies, progress, commands, paths, errors."""
