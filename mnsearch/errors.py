"""The one base class of every user-facing error: the CLI prints it as one line, exit 2."""


class MnsearchError(ValueError):
    """Bad input (spec, dataset, checkpoint, configuration); the message says how to fix it."""
