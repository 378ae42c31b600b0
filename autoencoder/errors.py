"""The one exception type the CLI turns into a one-line message and exit status 2."""

import sys


class UserError(Exception):
    """A mistake the user can fix: bad config, missing data, impossible shapes, bad run dir."""


class RunFailed(Exception):
    """An unexpected failure (a bug, exit status 1) after a run directory exists; it is kept."""


def exit_on_user_error(main):
    """Run `main()`; a UserError becomes `error: ...` lines on stderr and exit status 2, as the CLI's."""
    try:
        return main()
    except UserError as exc:
        for line in str(exc).splitlines():
            print(f"error: {line}", file=sys.stderr)
        raise SystemExit(2) from None
