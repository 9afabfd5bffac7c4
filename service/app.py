"""The HTTP endpoints of ``sealion serve`` (FastAPI): versioned under ``/v1``, documented at ``/docs``.

    GET    /v1/health                         liveness, queue, contexts, upload limit
    GET    /v1/spec                           the model's client spec (client.json: no weights)
    POST   /v1/contexts                       a public context (bytes) -> its id (201; 200 if known)
    GET    /v1/contexts/{id}                  is this context registered? (200 / 404)
    DELETE /v1/contexts/{id}                  forget a context (204)
    POST   /v1/contexts/{id}/predict          an encrypted query (bytes) -> the encrypted answer
    GET    /metrics                           Prometheus text format

Bodies are raw bytes (``application/octet-stream``) read as a stream and refused with 413 past
the size limit. Everything that computes on keys or ciphertexts (checking a context, the
forward pass) runs in a forked child (``jobs.py``), so the event loop only moves bytes.
"""

import asyncio
import hashlib
from http import HTTPStatus
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from heras.deployment import ClientSpec, Server
from primitives.serialization import read_file

from .errors import PayloadTooLarge, ServiceError, from_library_error
from .jobs import JobQueue, call_in_fork
from .observe import Metrics, RequestLog
from .store import ContextStore

API_VERSION = "v1"
_STATUSES = {status.value for status in HTTPStatus}
_BINARY = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}


@dataclass(frozen=True)
class Settings:
    """How a service runs.

    Attributes:
        folder: the prepared model (``heras.deployment.save_prepared``).
        contexts: where uploaded public contexts are kept (default ``<folder>/contexts``).
        workers: forward passes computed at the same time (each already uses every core).
        max_queue: admitted queries that may wait; one more is answered 503 with Retry-After.
        max_upload_bytes: largest request body (context or query); 413 past it.
    """

    folder: Path
    contexts: Path | None = None
    workers: int = 1
    max_queue: int = 8
    max_upload_bytes: int = 2 * 1024 ** 3


class ErrorBody(BaseModel):
    error: str
    message: str
    request_id: str | None = None


class ContextInfo(BaseModel):
    context_id: str
    bytes: int
    created: bool


def _errors(*statuses):
    return {status: {"model": ErrorBody} for status in statuses}


def create_app(settings):
    """The ASGI application for ``settings`` (the prepared model is loaded here, once)."""
    server = Server(settings.folder)
    spec = ClientSpec.load(settings.folder).to_dict()
    store = ContextStore(settings.contexts or Path(settings.folder) / "contexts")
    queue = JobQueue(settings.workers, settings.max_queue)
    checks = asyncio.Semaphore(2)
    metrics = Metrics(queue, store)
    limit = settings.max_upload_bytes
    app = FastAPI(title="sealion encrypted inference", version=API_VERSION,
                  description=f"Encrypted inference with {server!r}. Bodies are sealion artifacts "
                              "(bytes from heras.deployment.Client); the server never holds a secret key.")

    @app.exception_handler(ServiceError)
    async def service_error(request, error):
        return _json_error(request, error)

    @app.exception_handler(HTTPException)
    async def http_error(request, error):
        name = HTTPStatus(error.status_code).phrase.replace(" ", "") if error.status_code in _STATUSES else "HTTPError"
        return _json_error(request, ServiceError(error.status_code, str(error.detail), name))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, error):
        return _json_error(request, ServiceError(400, f"Invalid request: {error.errors()}", "InvalidRequest"))

    @app.exception_handler(Exception)
    async def unexpected_error(request, error):
        return _json_error(request, ServiceError(500, "The service failed unexpectedly; its log has the "
                                                      "details.", "InternalError"))

    @app.get(f"/{API_VERSION}/health", summary="Liveness, queue and limits")
    async def health():
        return {"status": "ok", "model": repr(server), "scheme": server.plan.scheme,
                "queue": {"waiting": queue.waiting, "running": queue.running, "workers": queue.workers,
                          "max_queue": queue.max_queue, "completed": queue.completed},
                "contexts": store.count(), "max_upload_bytes": limit}

    @app.get(f"/{API_VERSION}/spec", summary="The model's client spec (client.json; no weights)")
    async def client_spec():
        return spec

    @app.post(f"/{API_VERSION}/contexts", status_code=201, response_model=ContextInfo,
              summary="Register a public context", responses=_errors(400, 409, 413),
              openapi_extra={"requestBody": {"content": _BINARY, "required": True}})
    async def upload_context(request: Request, response: Response):
        """Check a client's public context (no secret key, the model's parameters) and keep it on
        disk; the answer's id names it in predictions. Uploading the same bytes again answers 200."""
        stream, temporary = store.upload_file()
        try:
            with stream:
                identifier, size = await _receive(request, limit, stream)
            if store.exists(identifier):
                response.status_code = 200
                return ContextInfo(context_id=identifier, bytes=size, created=False)
            async with checks:
                try:
                    await asyncio.to_thread(call_in_fork, _check_context, server, temporary)
                except Exception as error:  # noqa: BLE001 - mapped to the JSON refusal
                    raise from_library_error(error) from None
            store.commit(temporary, identifier)
            metrics.context_uploads.inc()
            return ContextInfo(context_id=identifier, bytes=size, created=True)
        finally:
            temporary.unlink(missing_ok=True)

    @app.get(f"/{API_VERSION}/contexts/{{context_id}}", response_model=ContextInfo,
             summary="Is a context registered?", responses=_errors(404))
    async def get_context(context_id: str):
        path = store.path(context_id)
        return ContextInfo(context_id=context_id, bytes=path.stat().st_size, created=False)

    @app.delete(f"/{API_VERSION}/contexts/{{context_id}}", status_code=204, summary="Forget a context",
                responses=_errors(404))
    async def delete_context(context_id: str):
        store.remove(context_id)
        return Response(status_code=204)

    @app.post(f"/{API_VERSION}/contexts/{{context_id}}/predict", summary="Run the model on an encrypted query",
              response_class=Response, responses={200: {"content": _BINARY}, **_errors(400, 404, 409, 413, 503)},
              openapi_extra={"requestBody": {"content": _BINARY, "required": True}})
    async def predict(context_id: str, request: Request):
        """The encrypted output for an encrypted batch (bytes from ``Client.encrypt``) under the
        registered context ``context_id``. 503 with Retry-After when the queue is full."""
        path = store.path(context_id)
        with queue.admit() as ticket:
            chunks = []
            await _receive(request, limit, chunks, digest=False)   # hashing 600 MB would cost ~1 s
            query = b"".join(chunks)   # bytes: the worker reads them without a copy
            del chunks
            try:
                answer, seconds = await queue.run(ticket, _forward, server, path, query)
            except Exception as error:  # noqa: BLE001 - mapped to the JSON refusal
                raise from_library_error(error) from None
        metrics.forward_seconds.observe(seconds)
        return Response(answer, media_type="application/octet-stream")

    @app.get("/metrics", summary="Prometheus metrics (text format)", response_class=Response)
    async def prometheus_metrics():
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    wrapped = RequestLog(app, metrics)
    wrapped.fastapi, wrapped.queue, wrapped.store = app, queue, store
    return wrapped


async def _receive(request, limit, sink, digest=True):
    """Stream the body into ``sink`` (a file, or a list of chunks); return (sha256 hex, size); 413 past
    ``limit`` bytes (at once if Content-Length says so). Only contexts need the digest (their id)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(int(declared), limit)
    digest, size = hashlib.sha256() if digest else None, 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(size, limit)
            if digest is not None:
                digest.update(chunk)
            if isinstance(sink, list):
                sink.append(chunk)
            else:
                sink.write(chunk)
    except ClientDisconnect:
        raise ServiceError(400, f"The client disconnected after {size} bytes, before its upload ended; "
                                "nothing was computed or stored.", "ClientDisconnected") from None
    return (digest.hexdigest() if digest is not None else None), size


def _check_context(server, path):
    """In a worker: load the uploaded context as the server would (refusing secret keys and
    other parameters, with Server's messages)."""
    server.load_context(read_file(path, "context"))


def _forward(server, context_path, query):
    """In a worker: the model's encrypted answer to ``query`` and the seconds it took."""
    import time
    start = time.perf_counter()
    context = server.load_context(read_file(context_path, "context"))
    answer = server.run(context, query)
    return answer, time.perf_counter() - start


def _json_error(request, error):
    request_id = request.scope.get("state", {}).get("request_id")
    body = {"error": error.error, "message": error.message, "request_id": request_id}
    headers = dict(error.headers)
    return JSONResponse(body, status_code=error.status, headers=headers)

