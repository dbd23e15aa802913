"""The task lifecycle, the domain: tasks and accounts (``models``), creating, listing, cancelling
and expiring them (``service``), who runs when (``scheduler``, ``timelines``), the virtual
``clock``, keys and regions, the error catalogue (``errors``), how the service writes times, the
``Store`` interface the state goes through, and the rendering of each accepted task's clip
(``rendering``, with the content-addressed ``clip_cache``).

May import: ``media``. Never HTTP (aiohttp), the store implementations or anything above."""
