"""The one exception type the CLI turns into a one-line message and exit status 2."""

import contextlib
import contextvars
import functools
import sys

# Who messages speak to: the command line's user knows its options (--timeout 5x), the Python
# API's its arguments (timeout='5x'); both reach the same functions. The first to say wins.
_READER = contextvars.ContextVar("autoencoder_reader", default="command line")
_SAID = contextvars.ContextVar("autoencoder_reader_said", default=False)


class UserError(Exception):
    """A mistake the user can fix: bad config, missing data, impossible shapes, bad run dir."""


class RunFailed(Exception):
    """An unexpected failure (a bug, exit status 1) after a run directory exists; it is kept."""


def named(flag: str, argument: str) -> str:
    """How a message names an option: the command line's `flag`, or the API's `argument`."""
    return argument if _READER.get() == "python" else flag


@contextlib.contextmanager
def reader(who: str):
    """Messages raised inside speak to `who` ("command line" or "python"), unless a caller
    further out already chose (the CLI's commands call the API)."""
    if _SAID.get():
        yield
        return
    tokens = _READER.set(who), _SAID.set(True)
    try:
        yield
    finally:
        _SAID.reset(tokens[1])
        _READER.reset(tokens[0])


def python_api(function):
    """Decorate an API function: its messages name its arguments, not the CLI's options."""

    @functools.wraps(function)
    def call(*args, **kwargs):
        with reader("python"):
            return function(*args, **kwargs)

    return call


def exit_on_user_error(main):
    """Run `main()`; a UserError becomes `error: ...` lines on stderr and exit status 2, as the CLI's."""
    try:
        with reader("command line"):
            return main()
    except UserError as exc:
        for line in str(exc).splitlines():
            print(f"error: {line}", file=sys.stderr)
        raise SystemExit(2) from None
