"""The client report card: what a client did wrong over time, judged from the request journal and
the task timelines against the real service's rules (``rules``), with thresholds as settings
(``thresholds``), the card itself (``card``), the input it reads (``facts``), the chaos schedule
joined with what happened (``chaos_view``) and a plain-text renderer (``render``). No HTTP: the
admin API, the command line and the pytest plugin show it.

May import: ``traffic``, ``tasks``. Not ``pipeline`` or anything above it."""
