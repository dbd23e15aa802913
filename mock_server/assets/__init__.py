"""Images the emulator answers from this machine instead of the network: the built-in sample
frames (served under ``/_mock/samples/`` and standing in for the API document's own sample URLs)
and a user's files mapped to their CDN's URL prefixes (``--asset-map URL_PREFIX=DIR``).
``api/image_intake.py`` decides, in one place, which URLs are answered from here.

May import: nothing of the emulator's (the bottom floor, like ``media``): names, bytes and paths."""
