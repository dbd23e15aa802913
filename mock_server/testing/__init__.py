"""Helpers for testing code against the emulator: the pytest plugin (``pytest_plugin``), the
emulator in a background thread (``embedded.EmbeddedServer``), ``kf2v-mock serve`` as a child
process (``serve_process.ServeProcess``) and sample frames and prompts (``samples``).

May import anything (it is the top floor). Nothing imports it but tests and users. Kept free of
imports here: pytest imports the plugin in every run where kf2v-mock is installed."""
