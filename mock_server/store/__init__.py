"""Where the state is kept, behind ``tasks.store_interface.Store``: in memory (``memory``) or
durably in SQLite under a data dir (``sqlite``).

May import: ``tasks`` (the models and the interface). Nothing that knows about HTTP."""
