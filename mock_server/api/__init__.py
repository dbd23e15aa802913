"""The DashScope HTTP surface: the routes under ``/api/v1``, their thin handlers (create, query,
list, cancel, getPolicy), the create body's validation, image intake (guarded download and
inspection of the two frames) and the JSON shapes of tasks.

May import: ``pipeline``, ``traffic``, ``tasks``, ``media``, ``assets``. Not ``admin`` or ``oss`` (siblings) nor
the entrance (``app``, ``emulator``, ``cli``, ``config``)."""
