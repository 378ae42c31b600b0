"""The one exception type the CLI turns into a one-line message and exit status 2."""


class UserError(Exception):
    """A mistake the user can fix: bad config, missing data, impossible shapes, bad run dir."""


class RunFailed(Exception):
    """An unexpected failure (a bug, exit status 1) after a run directory exists; it is kept."""
