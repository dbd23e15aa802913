"""kf2v-mock: an offline emulator of DashScope's keyframe-to-video (kf2v) API.

The folders, by concern (each package's docstring says what it may import; dependencies flow one
way, entrance -> HTTP -> domain -> media, checked by tests/test_layers.py):

- ``cli``, ``config``, ``app``, ``emulator``: the entrance (command line, settings, the aiohttp
  application factory, one emulator instance's wiring);
- ``api/``: the DashScope HTTP surface; ``admin/``: the ``/_mock/`` control API; ``oss/``: the OSS
  stand-in (signed links, uploads);
- ``pipeline/``: the middlewares every request passes and what HTTP modules share;
- ``traffic/``: quotas, fault rules, scenarios, the chaos run and the journal, as plain models;
- ``report/``: the client report card (what a client did wrong, from the journal and timelines);
- ``tasks/``: the task lifecycle (the domain); ``store/``: memory and SQLite state;
- ``media/``: clip rendering; ``testing/``: pytest plugin, embedded server, ``ServeProcess``, samples.

The public names below load on first use, so ``import mock_server`` stays cheap.
"""

__version__ = "0.1.0"
EMULATOR_HEADER = "X-Kf2v-Mock"  # every response names the emulator and its version

_PUBLIC = {
    "EmbeddedServer": "mock_server.testing.embedded",
    "ServeProcess": "mock_server.testing.serve_process",
    "Settings": "mock_server.config",
    "KeySpec": "mock_server.tasks.accounts",
    "create_app": "mock_server.app",
}
__all__ = ["__version__", "EMULATOR_HEADER", *_PUBLIC]


def __getattr__(name: str):
    if name in _PUBLIC:
        import importlib
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'mock_server' has no attribute {name!r}")
