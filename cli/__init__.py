"""Local tooling: the `diamond-opus` command, the local host and the demo."""
