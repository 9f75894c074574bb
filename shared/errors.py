"""Refusals: what an administrator or a caller asked for cannot be done, for a reason they can act on."""


class Refused(ValueError):
    """The message says why, in words fit for the command line; nothing was changed."""
