"""HTTP/1.1 on a unix socket, as the VMMs' micro_http serves it (http.server does the parsing).

Both Firecracker and Cloud Hypervisor use micro_http: keep-alive, `Expect: 100-continue`
answered with an interim 100 (http.server's handle_expect_100), a body only with
Content-Length (chunked bodies read as empty), and parse errors answered with
400 `{ "error": "<reason>` NEWLINE `All previous unanswered requests will be dropped." }` (a raw
newline: micro_http formats it by hand), after which the connection is closed. Status lines
carry no reason phrase ("HTTP/1.1 204 "), and every response says "Server: Firecracker API"
(micro_http's, for CH too). Requests are handled one at a time (the VMMs run them serially on
their API thread): Server.lock is held around each route.
"""
import http.server
import json
import os
import socketserver
import threading
import traceback

DROPPED = "\nAll previous unanswered requests will be dropped."


def parse_error(msg):
    """micro_http's own answer to a request it cannot parse: formatted by hand, so the
    newline is a raw one (not valid JSON; a client must cope, as with the real VMMs)."""
    return ('{ "error": "%s%s" }' % (msg, DROPPED)).encode()


class HttpError(Exception):
    """A reply other than success: status and the VMM-specific body (already JSON-able)."""

    def __init__(self, status, body):
        Exception.__init__(self, "%d %s" % (status, body))
        self.status = status
        self.body = body


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, path, handler_cls, vmm, max_payload):
        self.vmm = vmm
        self.max_payload = max_payload
        self.lock = threading.Lock()
        socketserver.UnixStreamServer.__init__(self, path, handler_cls)


class Handler(http.server.BaseHTTPRequestHandler):
    """Subclasses set server_name and implement route(method, path, body) -> (status, obj)."""

    protocol_version = "HTTP/1.1"
    server_name = "VMM API"

    def version_string(self):
        return self.server_name

    def address_string(self):
        return "api"

    def log_request(self, code="-", size="-"):
        pass  # _handle logs each request with its reply

    def log_message(self, fmt, *args):
        self.server.vmm.log("api: " + (fmt % args))

    def send_response(self, code, message=None):
        """micro_http's status line has no reason phrase; its headers no Date."""
        self.log_request(code)
        self.send_response_only(code, "")
        self.send_header("Server", self.server_name)

    def send_error(self, code, message=None, explain=None):
        """http.server's own parse errors: micro_http's answer, always 400."""
        self._reply(400, parse_error(message or "Invalid request"))
        self.close_connection = True

    def _reply(self, status, obj):
        """obj: JSON-able, None (no body) or bytes (sent as they are)."""
        if isinstance(obj, bytes):
            body = obj
        else:
            body = b"" if obj is None else json.dumps(obj).encode()
        self.send_response(status)
        # micro_http says keep-alive even when it drops what follows a parse error
        self.send_header("Connection", "close" if self.client_close() else "keep-alive")
        if obj is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in getattr(self, "extra_headers", {}).items():
            self.send_header(k, v)
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def _body(self):
        """The body by Content-Length (micro_http reads none without it), or None."""
        cl = self.headers.get("Content-Length")
        if cl is None:
            return None
        if not cl.strip().isdigit():
            raise HttpError(400, parse_error("Invalid header. Reason: Invalid value. Key: "
                                             "Content-Length; Value: %s" % cl.strip()))
        n = int(cl)
        if n > self.server.max_payload:
            raise HttpError(400, parse_error("Request payload with size %d is larger than "
                                             "the limit of %d allowed by server." %
                                             (n, self.server.max_payload)))
        return self.rfile.read(n) if n else b""

    def client_close(self):
        return (self.headers.get("Connection", "") if self.headers else "").lower() == "close"

    def _handle(self):
        self.extra_headers = {}
        try:
            body = self._body()
        except HttpError as e:
            self.close_connection = True
            self._reply(e.status, e.body)
            return
        with self.server.lock:
            self.server.vmm.deprecated = False
            try:
                status, obj = self.route(self.command, self.path, body)
            except HttpError as e:
                status, obj = e.status, e.body
            except Exception as e:  # QEMU gone mid-request, a bug: still an answer
                self.server.vmm.log("api: %s" % traceback.format_exc())
                status, obj = self.server.vmm.internal_error(str(e))
            if self.server.vmm.deprecated and status < 300:
                self.extra_headers["Deprecation"] = "true"
        self.server.vmm.log("api: %s %s -> %d %s" % (self.command, self.path, status,
                                                     "" if obj is None else json.dumps(obj)))
        self._reply(status, obj)
        after = getattr(self.server.vmm, "after_reply", None)
        if after:
            after()

    do_GET = do_PUT = do_PATCH = do_POST = do_DELETE = do_HEAD = _handle


def bind(path, handler_cls, vmm, max_payload):
    """Binds the API socket; an existing path is an error, as in the VMMs."""
    if os.path.exists(path):
        raise OSError("%s: the API socket path already exists" % path)
    return Server(path, handler_cls, vmm, max_payload)
