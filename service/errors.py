"""Refusals as JSON: a status code, the error's name and the library's own message."""

import primitives as P

# Library errors by what they say about the request. Order matters: first match wins.
STATUS_BY_ERROR = (
    (P.SecretKeyError, 400),        # a context carrying the secret key
    (P.ParameterError, 409),        # keys made for other parameters than the model's
    (P.SchemeError, 409),           # a query made under other keys than the context named
    (P.SerializationError, 400),    # bytes that are not a sealion artifact, or altered
    (P.ShapeError, 400),            # a query of the wrong input shape
    (P.OverflowRiskError, 400),     # a query whose values exceed the model's proven input range
)


class ServiceError(Exception):
    """A refusal the service answers with ``status`` and a JSON body ``{error, message}``."""

    def __init__(self, status, message, error=None, headers=None):
        super().__init__(message)
        self.status, self.message = status, message
        self.error = error or type(self).__name__
        self.headers = headers or {}


class UnknownContext(ServiceError):
    def __init__(self, context_id):
        super().__init__(404, f"No context with id {context_id!r} is registered here. Upload the public "
                              "context first (POST /v1/contexts); its id is the answer's `context_id`.")


class PayloadTooLarge(ServiceError):
    def __init__(self, size, limit):
        super().__init__(413, f"The request body is {size} bytes or more; this service accepts at most "
                              f"{limit} bytes (sealion serve --max-upload-mb). Send a smaller batch.")


class QueueFull(ServiceError):
    def __init__(self, waiting, retry_after):
        super().__init__(503, f"The service is busy: {waiting} queries are already waiting. Retry after "
                              f"{retry_after} s (Retry-After header).", headers={"Retry-After": str(retry_after)})


class WorkerFailed(ServiceError):
    def __init__(self, message):
        super().__init__(500, message)


def from_library_error(error):
    """A :class:`ServiceError` for an exception raised by the computation."""
    if isinstance(error, ServiceError):
        return error
    for kind, status in STATUS_BY_ERROR:
        if isinstance(error, kind):
            return ServiceError(status, str(error), type(error).__name__)
    if isinstance(error, P.SealionError):
        return ServiceError(500, str(error), type(error).__name__)
    return WorkerFailed(f"The computation failed unexpectedly ({type(error).__name__}); the server's "
                        "log has the details.")
