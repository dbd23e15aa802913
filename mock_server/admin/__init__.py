"""The emulator's own control API under ``/_mock/``: its routes, handlers (health, clock, reset,
task dump, fault rules, request journal, scenarios, sample frames) and who may use it
(``access``).

May import: ``pipeline``, ``traffic``, ``tasks``, ``assets``. Not ``api`` or ``oss`` (siblings) nor the
entrance."""
