"""The campaign pages: what they show and accept, host-neutral; ``fab`` and ``asgi`` serve them over HTTP."""
