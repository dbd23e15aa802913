"""The intercepting proxy, for clients that cannot change their base URL: an HTTP proxy listener
(``CONNECT`` and plain absolute-URL requests) that answers only the real DashScope and OSS
hostnames of the emulated regions, terminates TLS with certificates from a local CA, and hands the
decrypted requests to the emulator's own aiohttp application (its routes, middlewares and
handlers: nothing is answered here but refusals). Any other host is refused with 403 and never
contacted.

- ``authority``: the local CA (made once per directory) and the leaf certificates it issues;
- ``contexts``: TLS server contexts per hostname (TLS 1.2+), cached;
- ``hosts``: which hostnames are intercepted (from ``tasks.regions``, the one place real names
  map to regions and buckets) and the refusal text;
- ``listener``: ``ProxySite``, the listener as one more site of the emulator's runner;
- ``clients``: what a client needs to go through it (proxy and CA environment variables, the
  trust instructions ``kf2v-mock ca`` prints).

May import: ``pipeline`` (request keys), ``tasks`` (regions). It sits between the HTTP packages and
the entrance (floor 4.5): the entrance starts it; nothing below imports it.
"""
