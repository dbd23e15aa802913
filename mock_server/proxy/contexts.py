"""TLS server contexts for the intercepted hostnames: one per name, with a leaf certificate from the
local CA, TLS 1.2 or newer only, HTTP/1.1 by ALPN (the emulator speaks nothing else). Made in a
worker thread (key generation and signing must not stall the event loop) and kept for a day, well
inside the leaf's two days of validity."""

from __future__ import annotations

import asyncio
import os
import ssl
import tempfile
import time
from collections import OrderedDict

from .authority import CertificateAuthority

RENEW_AFTER = 24 * 3600.0  # seconds a context is reused before a fresh leaf is made
MAX_CONTEXTS = 256  # hostnames kept (workspace hosts are many); the least recently used goes


class ServerContexts:
    def __init__(self, authority: CertificateAuthority):
        self.authority = authority
        self._cache: OrderedDict[str, tuple[float, ssl.SSLContext]] = OrderedDict()

    async def for_host(self, hostname: str) -> ssl.SSLContext:
        cached = self._cache.get(hostname)
        if cached is not None and time.monotonic() - cached[0] < RENEW_AFTER:
            self._cache.move_to_end(hostname)
            return cached[1]
        context = await asyncio.get_running_loop().run_in_executor(None, self.build, hostname)
        self._cache[hostname] = (time.monotonic(), context)
        self._cache.move_to_end(hostname)
        while len(self._cache) > MAX_CONTEXTS:
            self._cache.popitem(last=False)
        return context

    def build(self, hostname: str) -> ssl.SSLContext:
        """A server context presenting a fresh leaf for ``hostname`` (blocks)."""
        cert_pem, key_pem = self.authority.issue(hostname)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols(["http/1.1"])
        # The ssl module loads certificates from files only: a private temporary file (mode 0600),
        # removed as soon as it is read.
        fd, path = tempfile.mkstemp(prefix="kf2v-leaf-", suffix=".pem")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(cert_pem + key_pem)
            context.load_cert_chain(path)
        finally:
            os.unlink(path)
        return context
