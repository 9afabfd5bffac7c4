"""Integer settings read from the environment (worker processes, BLAS threads, block sizes)."""

import os


def integer_setting(name, default, minimum=0, value=None):
    """The integer setting ``name``: ``value`` if given, else $name, else ``default``.

    Raises ValueError naming the setting when it is not an integer >= ``minimum``.
    """
    if value is None:
        value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = None
    if number is None or number < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}" if minimum else \
            "a non-negative integer"
        raise ValueError(f"{name} must be {kind}; found {value!r}.")
    return number
