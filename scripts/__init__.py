"""Developer tooling: the ``make run`` launcher and its local SMTP sink."""
