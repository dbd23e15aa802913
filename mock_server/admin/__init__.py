"""The emulator's own control API under ``/_mock/``: its routes, handlers (health, clock, reset,
task dump, fault rules, request journal, scenarios, sample frames; the report card and the chaos
run in ``report_handlers``) and who may use it (``access``).

May import: ``pipeline``, ``report``, ``traffic``, ``tasks``, ``assets``. Not ``api`` or ``oss`` (siblings) nor the
entrance."""
