"""``GET /_mock/samples``: the built-in sample frames, each under a stable URL on every listener in
every accepted format (``/_mock/samples/first.png`` ...), plus which other URLs the emulator answers
offline (the API document's sample URLs, ``--asset-map`` prefixes). Any peer may read them: they
are static images, and a client on another machine needs them to get a first task through."""

from __future__ import annotations

import asyncio

from aiohttp import web

from ..assets import samples
from ..pipeline.answers import json_response
from ..pipeline.keys import EMULATOR
from ..tasks.errors import DashScopeError


async def list_samples(request: web.Request) -> web.Response:
    settings = request.app[EMULATOR].settings
    base = f"{request.scheme}://{request.host}{samples.SAMPLES_PATH}"
    width, height = samples.SIZE
    return json_response({
        "samples": [{"name": name, "width": width, "height": height,
                     "urls": {ext: f"{base}/{samples.file_name(name, ext)}" for ext in samples.FORMATS}}
                    for name in samples.NAMES],
        # Answered with the built-in frames without a fetch (--no-doc-sample-urls: fetched).
        "doc_sample_urls": {url: f"{base}/{samples.file_name(*sample)}"
                            for url, sample in samples.DOC_SAMPLE_URLS.items()}
        if settings.doc_sample_urls else {},
        "asset_map": [{"url_prefix": m.prefix, "directory": str(m.directory)}
                      for m in settings.asset_map],
    })


async def sample_file(request: web.Request) -> web.Response:
    sample = samples.parse_file_name(request.match_info["file"])
    if sample is None:
        names = ", ".join(samples.file_name(n, "png") for n in samples.NAMES)
        raise DashScopeError(404, "NotFound", f"no such sample; try {names} (or .jpg, .jpeg, "
                                              f".bmp, .webp), or GET {samples.SAMPLES_PATH}")
    # The first request draws and encodes it (tens of ms): off the event loop.
    data = await asyncio.get_running_loop().run_in_executor(None, samples.sample_bytes, *sample)
    return web.Response(body=data, content_type=samples.mime_type(sample[1]),
                        headers={"Cache-Control": "public, max-age=86400"})
