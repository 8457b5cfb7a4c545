"""What the Python servers of tests/remote share: a threading HTTP/1.1 server on 127.0.0.1 whose
port is chosen by the kernel and written to a file once it listens, so that a launcher learns the
port without racing another process for it."""

import http.server
import os
import socket
import threading


class LoopbackServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    # Tests open many connections at once (parallel loads); the default backlog of 5 would make
    # the kernel drop SYNs, which looks like a slow server.
    request_queue_size = 128

    def __init__(self, handler_class, port=0):
        super().__init__(("127.0.0.1", port), handler_class)
        self.connection_count = 0
        self.connection_count_lock = threading.Lock()

    def next_connection_id(self):
        with self.connection_count_lock:
            self.connection_count += 1
            return self.connection_count


class LoopbackHandler(http.server.BaseHTTPRequestHandler):
    """Keep-alive HTTP/1.1; every response must carry Content-Length or close the connection."""

    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        # Headers and body go out in separate writes; without TCP_NODELAY a small last write can
        # wait 40 ms for the peer's delayed ACK.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.connection_id = self.server.next_connection_id()

    def log_request(self, code="-", size="-"):
        # Each server keeps its own record of requests; a line per request on stderr would only
        # fill the launcher's log file.
        pass


def write_port_file(path, port):
    """Written whole or not at all: the launcher polls for the file and reads it at once."""
    temporary = f"{path}.partial"
    with open(temporary, "w") as file:
        file.write(f"{port}\n")
    os.replace(temporary, path)


def serve(server, port_file):
    if port_file:
        write_port_file(port_file, server.server_address[1])
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()
