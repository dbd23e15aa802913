"""The OSS stand-in: signed result links (GET/HEAD with Range), the temporary-upload form POST,
the signing of links and upload policies, object-key rules and OSS's XML errors.

May import: ``pipeline``, ``tasks``. Not ``api`` or ``admin`` (siblings) nor the entrance."""
