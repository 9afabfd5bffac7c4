"""`sealion serve`: a prepared model's encrypted inference as an HTTP service (FastAPI + uvicorn).

- ``app.py``      the versioned endpoints (client spec, contexts, predictions, health, metrics)
- ``jobs.py``     encrypted work in forked worker processes behind a bounded queue (503 when full)
- ``store.py``    clients' public contexts persisted on disk (a restart loses none)
- ``observe.py``  one log line per request and Prometheus metrics
- ``errors.py``   every refusal as a JSON error carrying the library's message
- ``cli.py``      ``sealion serve`` and ``sealion query``

The client side is :class:`heras.deployment.RemoteServer`. Installing: ``pip install
"sealion[serve]"``. This package imports nothing heavy until a server is created, so the
``sealion`` command stays fast.
"""
