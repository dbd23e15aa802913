"""What every request passes through, and what every HTTP module shares: the middlewares (request
context and error mapping, body cap, traffic shaping), the typed app/request keys, JSON answers,
reading a JSON body once, and endpoint names.

May import: ``traffic``, ``tasks``. Never the handlers' packages (``api``, ``admin``, ``oss``): they
build on this one."""
