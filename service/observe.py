"""One log line per request, and Prometheus metrics (``prometheus_client``).

:class:`RequestLog` wraps the whole ASGI application: it gives each request an id (echoed in
the ``X-Request-ID`` header and in error bodies), counts the bytes in and out, times it, logs
``id method path status in=.. out=.. seconds`` once, and updates the metrics. An exception
that escaped every handler is logged here with its traceback; the client only ever receives
the JSON error.
"""

import logging
import time
import uuid

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

log = logging.getLogger("sealion.serve")
_SECONDS = (0.005, 0.02, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600)


class Metrics:
    """The service's metrics in their own registry (several apps in one process stay apart)."""

    def __init__(self, queue, store):
        self.registry = registry = CollectorRegistry()
        self.requests = Counter("sealion_requests", "HTTP requests answered, by endpoint and status",
                                ["method", "endpoint", "status"], registry=registry)
        self.errors = Counter("sealion_request_errors", "Requests answered with a 4xx or 5xx status",
                              ["endpoint", "status"], registry=registry)
        self.request_seconds = Histogram("sealion_request_seconds", "Time to answer a request",
                                         ["endpoint"], buckets=_SECONDS, registry=registry)
        self.received = Counter("sealion_received_bytes", "Request body bytes received", registry=registry)
        self.sent = Counter("sealion_sent_bytes", "Response body bytes sent", registry=registry)
        self.forward_seconds = Histogram("sealion_forward_seconds", "Encrypted forward passes (worker time)",
                                         buckets=_SECONDS, registry=registry)
        self.context_uploads = Counter("sealion_context_uploads", "Public contexts checked and stored",
                                       registry=registry)
        Gauge("sealion_queue_waiting", "Admitted queries waiting for a worker (uploading or queued)",
              registry=registry).set_function(lambda: queue.waiting)
        Gauge("sealion_queue_running", "Queries computing now", registry=registry).set_function(
            lambda: queue.running)
        Gauge("sealion_queue_capacity", "Queries that may wait before 503", registry=registry).set_function(
            lambda: queue.max_queue)
        Gauge("sealion_contexts", "Public contexts registered on disk", registry=registry).set_function(
            store.count)


class RequestLog:
    """ASGI middleware: request id, one log line, metrics, last-resort JSON 500."""

    def __init__(self, app, metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request_id = uuid.uuid4().hex[:12]
        scope.setdefault("state", {})["request_id"] = request_id
        start, counts = time.perf_counter(), {"in": 0, "out": 0, "status": None}

        async def counting_receive():
            message = await receive()
            if message["type"] == "http.request":
                counts["in"] += len(message.get("body", b""))
            return message

        async def counting_send(message):
            if message["type"] == "http.response.start":
                counts["status"] = message["status"]
                message = dict(message, headers=list(message.get("headers", [])) +
                               [(b"x-request-id", request_id.encode())])
            elif message["type"] == "http.response.body":
                counts["out"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        except Exception:  # noqa: BLE001 - the JSON 500 was sent by the app's handler
            log.exception("%s unhandled error", request_id)
            if counts["status"] is None:
                await _internal_error(counting_send, request_id)
        finally:
            self._record(scope, request_id, counts, time.perf_counter() - start)

    def _record(self, scope, request_id, counts, seconds):
        route = scope.get("route")
        endpoint = getattr(route, "path", None) or "unmatched"
        status = counts["status"] or 500
        m = self.metrics
        m.requests.labels(scope["method"], endpoint, str(status)).inc()
        if status >= 400:
            m.errors.labels(endpoint, str(status)).inc()
        m.request_seconds.labels(endpoint).observe(seconds)
        m.received.inc(counts["in"])
        m.sent.inc(counts["out"])
        log.info("%s %s %s %d in=%dB out=%dB %.3fs", request_id, scope["method"], scope["path"], status,
                 counts["in"], counts["out"], seconds)


async def _internal_error(send, request_id):
    import json
    body = json.dumps({"error": "InternalError", "request_id": request_id,
                       "message": "The service failed unexpectedly; its log has the details."}).encode()
    await send({"type": "http.response.start", "status": 500,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
