"""The foundations every layer stands on: errors, console lines, workers, torchrun, the frame rules, the one
training loop, the registry and the option type checker."""
