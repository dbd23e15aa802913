"""Traffic shaping, as plain models with no HTTP: rate quotas, fault rules, in-band scenarios, the
seeded chaos run and the request journal. ``pipeline.shaping`` applies them to requests; ``admin`` shows and edits them.

May import: ``tasks``. Nothing that knows about HTTP."""
