"""`RemoteServer`: a `sealion serve` service used like a local :class:`Server`.

``RemoteServer(url).run(public_context, query)`` has the signature of ``Server.run``: bytes in,
encrypted answer out, so ``Client.predict(server, x)`` works with either. The public context
(megabytes of keys) is uploaded once: its id is the SHA-256 of its bytes, checked with the
service before any upload and re-uploaded only if the service lost it. A busy service (503)
is retried after its Retry-After; every other refusal raises :class:`RemoteServiceError` with
the service's message, which is the library's own (e.g. why a context was refused).

Needs an HTTP client: ``pip install "sealion[serve]"`` (httpx).

Example:
    >>> remote = RemoteServer("http://127.0.0.1:8000")
    >>> client = Client(remote.spec())            # the model's client.json, from the service
    >>> logits = client.predict(remote, x)        # upload keys once, encrypt, send, decrypt
"""

import hashlib
import time

import primitives as P

from .spec import ClientSpec


class RemoteServiceError(P.SealionError):
    """The service refused a request or could not be reached.

    Attributes:
        status: the HTTP status (None if the service was not reached).
        error: the error's name on the service side (e.g. ``"SerializationError"``).
    """

    def __init__(self, message, status=None, error=None):
        super().__init__(message)
        self.status, self.error = status, error


class RemoteServer:
    """Client side of ``sealion serve``.

    Args:
        url: the service, e.g. ``"http://127.0.0.1:8000"``.
        timeout: seconds to wait for one answer (a forward pass can take minutes).
        retries: attempts after a 503 (busy) before giving up.
        max_wait: longest wait between two attempts, in seconds, whatever Retry-After says.
    """

    def __init__(self, url, timeout=900.0, retries=30, max_wait=30.0):
        try:
            import httpx
        except ImportError as error:
            raise ImportError("RemoteServer needs httpx: pip install 'sealion[serve]'") from error
        self.url = url.rstrip("/")
        self.retries, self.max_wait = retries, max_wait
        self._httpx = httpx
        self._http = httpx.Client(base_url=self.url, timeout=httpx.Timeout(timeout, connect=10.0))
        self._known = set()     # ids of contexts the service holds
        self._limit = None
        self.uploads = 0        # contexts this object uploaded (to see that keys go up once)
        self.busy_retries = 0   # 503 answers it waited out

    # ----------------------------------------------------------------- service facts
    def spec(self):
        """The model's :class:`ClientSpec`, as the service's ``client.json`` says."""
        return ClientSpec.from_dict(self._request("GET", "/v1/spec").json(), source=f"{self.url}/v1/spec")

    def health(self):
        return self._request("GET", "/v1/health").json()

    # ----------------------------------------------------------------- contexts and queries
    @staticmethod
    def context_id(context):
        """The id the service gives ``context`` (its bytes' SHA-256)."""
        return hashlib.sha256(_context_bytes(context)).hexdigest()

    def upload_context(self, context):
        """Register a public context (bytes or a public Context) unless the service has it;
        return its id."""
        data = _context_bytes(context)
        identifier = self.context_id(data)
        if identifier in self._known:
            return identifier
        response = self._request("GET", f"/v1/contexts/{identifier}", allow=(404,))
        if response.status_code == 404:
            self._check_size(data, "public context")
            answer = self._request("POST", "/v1/contexts", content=data).json()
            if answer["context_id"] != identifier:
                raise RemoteServiceError(f"The service named the context {answer['context_id']!r}, not its "
                                         f"SHA-256 {identifier!r}: is {self.url} a sealion service?")
            self.uploads += 1
        self._known.add(identifier)
        return identifier

    def run(self, context, query):
        """The encrypted answer to ``query`` (bytes) under ``context`` (bytes or a public Context),
        like ``Server.run``; the context is uploaded only if the service does not hold it."""
        if not isinstance(query, (bytes, bytearray)):
            raise TypeError(f"Expected the query as bytes (Client.encrypt). Received: {type(query).__name__}")
        self._check_size(query, "query")
        identifier = self.upload_context(context)
        path = f"/v1/contexts/{identifier}/predict"
        response = self._request("POST", path, content=bytes(query), allow=(404,))
        if response.status_code == 404:  # the service lost it (its folder was wiped): once more
            self._known.discard(identifier)
            self.upload_context(context)
            response = self._request("POST", path, content=bytes(query))
        return response.content

    # ----------------------------------------------------------------- HTTP
    def _check_size(self, data, what):
        if self._limit is None:
            self._limit = int(self.health()["max_upload_bytes"])
        if len(data) > self._limit:
            raise RemoteServiceError(
                f"The {what} is {len(data)} bytes; {self.url} accepts at most {self._limit} bytes per "
                "request. Send a smaller batch (fewer features or CRT primes), or raise the service's "
                "--max-upload-mb.", status=413, error="PayloadTooLarge")

    def _request(self, method, path, content=None, allow=()):
        for attempt in range(self.retries + 1):
            try:
                response = self._http.request(method, path, content=content)
            except self._httpx.TransportError as error:
                raise RemoteServiceError(f"Cannot reach the sealion service at {self.url} ({error!r}). Is "
                                         "`sealion serve` running there?") from None
            if response.status_code == 503 and attempt < self.retries:
                self.busy_retries += 1
                time.sleep(min(self.max_wait, _retry_after(response)))
                continue
            if response.status_code < 400 or response.status_code in allow:
                return response
            raise _refusal(response, method, path)
        raise AssertionError("unreachable")

    def close(self):
        self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"<heras RemoteServer {self.url}>"


def _context_bytes(context):
    if isinstance(context, P.Context):
        if context.has_secret_key:
            raise P.SecretKeyError("This context holds the secret key; send Client.public_context() "
                                   "(public keys only) instead.")
        return context.serialize()
    if not isinstance(context, (bytes, bytearray)):
        raise TypeError("Expected the public context as bytes (Client.public_context()) or a public "
                        f"primitives.Context. Received: {type(context).__name__}")
    return bytes(context)


def _retry_after(response):
    try:
        return max(0.1, float(response.headers.get("retry-after", "1")))
    except ValueError:
        return 1.0


def _refusal(response, method, path):
    try:
        body = response.json()
        message, error = body["message"], body.get("error")
    except (ValueError, KeyError, TypeError):
        message, error = response.text[:500], None
    return RemoteServiceError(f"{method} {path} was refused ({response.status_code}"
                              f"{', ' + error if error else ''}): {message}", response.status_code, error)
