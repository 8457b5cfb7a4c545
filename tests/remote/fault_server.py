#!/usr/bin/python3
"""Serves the files of a directory over HTTP/1.1 on 127.0.0.1 with byte ranges, ETags and If-Match,
and injects, when a request's path asks for it, the faults that nginx and s3rver will not produce:
connections reset or closed mid-body, lying Content-Range or Content-Length, error statuses, a
Range ignored, a file replaced between requests, stalls, trickles. README.md ("Fault server") is the manual:
the syntax of /fault/<spec>/<file>, the meaning of each fault and the control endpoints."""

import argparse
import fcntl
import json
import os
import posixpath
import re
import select
import socket
import struct
import termios
import threading
import time
import urllib.parse

import serving

CHUNK_BYTES = 64 * 1024
# How long a reset waits for the bytes already written to reach the client: a reset discards
# whatever the kernel has not sent yet, which would make "N bytes, then a reset" inexact.
RESET_DRAIN_SECONDS = 2.0
# How long GET /control/log waits for requests still being answered, so that a client that has
# just read the last byte of a response finds that response in the log.
LOG_SETTLE_SECONDS = 5.0
INVERTED_BYTES = bytes(255 - value for value in range(256))


def non_negative(text):
    value = int(text)
    if value < 0:
        raise ValueError("must not be negative")
    return value


def positive(text):
    value = int(text)
    if value < 1:
        raise ValueError("must be at least 1")
    return value


def redirect_or_error_status(text):
    value = int(text)
    if not 300 <= value <= 599:
        raise ValueError("must be a status from 300 to 599")
    return value


def error_status(text):
    value = int(text)
    if not 400 <= value <= 599:
        raise ValueError("must be a status from 400 to 599")
    return value


def scheme(text):
    if not re.fullmatch(r"[a-z][a-z0-9+.-]*", text):
        raise ValueError("must be a URL scheme, such as ftp")
    return text


def port_number(text):
    value = int(text)
    if not 1 <= value <= 65535:
        raise ValueError("must be a port from 1 to 65535")
    return value


def seconds(text):
    value = float(text)
    if not 0 <= value <= 3600:
        raise ValueError("must be from 0 to 3600 seconds")
    return value


# Each fault: how its value is parsed (None: it takes no value), and the options it accepts.
FAULTS = {
    "drop-after": (non_negative, {"times"}),
    "short-body": (non_negative, {"times"}),
    "short-length": (non_negative, {"times"}),
    "wrong-range": (int, {"times"}),
    "status": (error_status, {"times", "retry-after"}),
    "ignore-range": (None, {"times"}),
    "replace-after": (non_negative, {"size-delta", "cut-first"}),
    "delay": (seconds, {"times"}),
    "stall-after": (non_negative, {"times", "seconds"}),
    "redirect-to": (scheme, {"times", "port"}),
    "endless-body": (redirect_or_error_status, {"times"}),
    "trickle": (positive, {"times"}),
}
OPTIONS = {"port": port_number, "times": positive, "retry-after": non_negative, "size-delta": int, "seconds": seconds,
           "cut-first": non_negative}
REQUIRED_OPTIONS = {"stall-after": {"seconds"}}


class Fault:
    """One /fault/<spec>/ path segment, such as "drop-after=1000,times=2"."""

    def __init__(self, spec):
        self.spec = spec
        self.name = None
        self.value = None
        self.options = {}
        for item in spec.split(","):
            key, has_value, text = item.partition("=")
            if key in FAULTS:
                if self.name is not None:
                    raise ValueError(f"two faults in one spec: {self.name} and {key}")
                parse, _ = FAULTS[key]
                if (parse is None) == has_value:
                    raise ValueError(f"{key} takes {'no' if parse is None else 'a'} value")
                self.name, self.value = key, parse(text) if parse else None
            elif key in OPTIONS:
                if not has_value:
                    raise ValueError(f"{key} needs a value")
                if key in self.options:
                    raise ValueError(f"{key} given twice")
                self.options[key] = OPTIONS[key](text)
            else:
                raise ValueError(f"unknown fault or option {key!r}")
        if self.name is None:
            raise ValueError("no fault named")
        allowed = FAULTS[self.name][1]
        for option in self.options:
            if option not in allowed:
                raise ValueError(f"{option} does not apply to {self.name}")
        for option in REQUIRED_OPTIONS.get(self.name, ()):
            if option not in self.options:
                raise ValueError(f"{self.name} needs {option}")

    def active_for(self, request_number):
        """Whether the fault applies to the request_number-th request (from 1) for a file."""
        if self.name == "replace-after":
            return request_number > self.value
        times = self.options.get("times")
        return times is None or request_number <= times


class FileVersion:
    """The bytes a file is served with: its own, or after replace-after its replacement (every
    byte inverted, then cut or padded with zeros by size-delta), which has an ETag of its own."""

    def __init__(self, path, replaced=False, size_delta=0):
        status = os.stat(path)
        self.path = path
        self.original_size = status.st_size
        self.replaced = replaced
        self.size = max(0, status.st_size + size_delta) if replaced else status.st_size
        suffix = "-replaced" if replaced else ""
        self.etag = f'"{self.size:x}-{status.st_mtime_ns:x}{suffix}"'

    def chunks(self, start, end):
        """The bytes start..end (inclusive), in pieces of at most CHUNK_BYTES."""
        with open(self.path, "rb") as file:
            offset = start
            while offset <= end:
                length = min(CHUNK_BYTES, end + 1 - offset)
                data = os.pread(file.fileno(), length, offset) if offset < self.original_size else b""
                if self.replaced:
                    data = data.translate(INVERTED_BYTES) + bytes(length - len(data))
                yield data
                offset += length


def parse_range(header, size):
    """A single "bytes=" range as (start, end) inclusive, "unsatisfiable", or None where the
    header is absent, malformed or asks for several ranges (served whole, as RFC 9110 allows)."""
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", (header or "").strip())
    if not match or match[1] == match[2] == "":
        return None
    if match[1] == "":
        suffix = int(match[2])
        if suffix == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - suffix), size - 1
    start = int(match[1])
    if match[2] and int(match[2]) < start:
        return None
    if start >= size:
        return "unsatisfiable"
    end = min(int(match[2]), size - 1) if match[2] else size - 1
    return start, end


class ClientGone(Exception):
    pass


class RequestLog:
    """The requests served since the last reset, and how many each (fault, file) has had."""

    def __init__(self):
        self.changed = threading.Condition()
        self.records = []
        self.in_flight = 0
        self.counts = {}

    def begin(self, record):
        with self.changed:
            self.records.append(record)
            self.in_flight += 1

    def end(self):
        with self.changed:
            self.in_flight -= 1
            self.changed.notify_all()

    def count(self, key):
        with self.changed:
            self.counts[key] = self.counts.get(key, 0) + 1
            return self.counts[key]

    def snapshot(self):
        with self.changed:
            self.changed.wait_for(lambda: self.in_flight == 0, timeout=LOG_SETTLE_SECONDS)
            return [dict(record) for record in self.records]

    def reset(self):
        with self.changed:
            self.records = []
            self.counts = {}


class FaultHandler(serving.LoopbackHandler):
    # The log record of the request being answered; None for control requests and for requests
    # that http.server rejects before they reach a do_ method.
    record = None

    def do_GET(self):
        self.answer(send_body=True)

    def do_HEAD(self):
        self.answer(send_body=False)

    def do_POST(self):
        self.discard_request_body()
        if urllib.parse.urlsplit(self.path).path == "/control/reset":
            self.server.request_log.reset()
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.send_text(405, "only /control/reset takes POST\n", send_body=True, allow="GET, HEAD")

    def discard_request_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        while length > 0:
            length -= len(self.rfile.read(min(length, CHUNK_BYTES)))

    def answer(self, send_body):
        self.discard_request_body()
        path = urllib.parse.urlsplit(self.path).path
        if path == "/control/log":
            self.send_text(200, json.dumps(self.server.request_log.snapshot(), indent=1) + "\n",
                           send_body, content_type="application/json")
            return
        self.record = record = {
            "method": self.command,
            "path": self.path,
            "file": None,
            "range": self.headers.get("Range"),
            "if_match": self.headers.get("If-Match"),
            "authorization": self.headers.get("Authorization") is not None,
            "status": None,
            "bytes_sent": 0,
            "fault": None,
            "connection": self.connection_id,
        }
        self.server.request_log.begin(record)
        try:
            self.answer_file(path, send_body)
        except (ClientGone, BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            self.server.request_log.end()

    def answer_file(self, path, send_body):
        record = self.record
        fault = None
        if path.startswith("/fault/"):
            spec, _, path = path[len("/fault/"):].partition("/")
            path = "/" + path
            try:
                fault = Fault(urllib.parse.unquote(spec))
            except ValueError as error:
                self.send_text(400, f"bad fault spec {spec!r}: {error}\n", send_body)
                return
        relative = posixpath.normpath(urllib.parse.unquote(path).lstrip("/"))
        local = os.path.join(self.server.root, relative)
        if relative.startswith("..") or relative == "." or not os.path.isfile(local):
            self.send_text(404, "no such file\n", send_body)
            return
        record["file"] = relative

        active = False
        if fault is not None:
            active = fault.active_for(self.server.request_log.count((fault.spec, relative)))
            if active:
                record["fault"] = fault.spec
        replaced = active and fault.name == "replace-after"
        version = FileVersion(local, replaced, fault.options.get("size-delta", 0) if replaced else 0)
        injected = fault.name if active and not replaced else None

        if injected == "delay":
            self.pause(fault.value)
        if injected == "status":
            retry_after = fault.options.get("retry-after")
            self.send_text(fault.value, f"injected status {fault.value}\n", send_body,
                           retry_after=None if retry_after is None else str(retry_after))
            return

        if injected == "endless-body":
            # An error or a redirect whose body never ends (for 120 s at most): a client must stop
            # reading it. A redirect leads to the same file without the fault.
            self.send_response(fault.value)
            if fault.value < 400:
                self.send_header("Location", f"/{relative}")
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(1 << 40))
            self.end_headers()
            deadline = time.monotonic() + 120
            try:
                while time.monotonic() < deadline:
                    self.send_body(b"error " * 10000)
            except OSError:
                pass
            self.close_connection = True
            return

        if injected == "redirect-to":
            host, port = self.server.server_address[:2]
            port = fault.options.get("port", port)
            self.send_response(302)
            self.send_header("Location", f"{fault.value}://{host}:{port}/{relative}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return

        if_match = self.headers.get("If-Match")
        if if_match is not None and not any(tag.strip() in ("*", version.etag) for tag in if_match.split(",")):
            self.send_text(412, "If-Match does not match the ETag\n", send_body)
            return

        byte_range = None if injected == "ignore-range" else parse_range(self.headers.get("Range"), version.size)
        if byte_range == "unsatisfiable":
            self.send_text(416, "range not satisfiable\n", send_body,
                           content_range=f"bytes */{version.size}")
            return
        if byte_range is None:
            status, start, end = 200, 0, version.size - 1
        else:
            status, (start, end) = 206, byte_range
            if injected == "wrong-range":
                start = min(max(start + fault.value, 0), version.size - 1)
                end = min(max(end + fault.value, 0), version.size - 1)
        body_length = end + 1 - start
        content_length = body_length
        if injected == "short-length":
            content_length = body_length = min(fault.value, body_length)

        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(content_length))
        self.send_header("ETag", version.etag)
        if injected != "ignore-range":
            self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{version.size}")
        self.end_headers()
        if not send_body:
            return

        cut_after = fault.value if injected in ("drop-after", "short-body") else None
        # replace-after=N,cut-first=B: the requests before the replacement are reset after B bytes,
        # so that a client retries the one it was making when the file changed.
        cutting_first = fault is not None and fault.name == "replace-after" and not replaced and "cut-first" in fault.options
        if cutting_first:
            cut_after = fault.options["cut-first"]
        pause_after = fault.value if injected == "stall-after" else None
        sent = 0
        for chunk in version.chunks(start, start + body_length - 1):
            if pause_after is not None and sent <= pause_after < sent + len(chunk):
                head = pause_after - sent
                self.send_body(chunk[:head])
                sent += head
                chunk = chunk[head:]
                self.pause(fault.options["seconds"])
                pause_after = None
            if cut_after is not None and sent + len(chunk) >= cut_after:
                self.send_body(chunk[:cut_after - sent])
                sent = cut_after
                break
            if injected == "trickle":
                self.trickle(chunk, fault.value)
            else:
                self.send_body(chunk)
            sent += len(chunk)
        if cut_after is not None and cut_after < body_length:
            self.close_connection = True
            if injected == "drop-after" or cutting_first:
                self.reset_connection()

    def send_response(self, code, message=None):
        super().send_response(code, message)
        if self.record is not None:
            self.record["status"] = code

    def send_body(self, data):
        self.wfile.write(data)
        if self.record is not None:
            self.record["bytes_sent"] += len(data)

    def send_text(self, status, text, send_body, content_type="text/plain", retry_after=None,
                  content_range=None, allow=None):
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (("Retry-After", retry_after), ("Content-Range", content_range), ("Allow", allow)):
            if value is not None:
                self.send_header(name, value)
        self.end_headers()
        if send_body:
            self.send_body(body)

    def trickle(self, data, rate):
        """Sends `data` at `rate` bytes a second, a tenth of a second's worth at a time, until the
        client closes its end."""
        step = max(1, rate // 10)
        for start in range(0, len(data), step):
            self.send_body(data[start:start + step])
            self.wfile.flush()
            self.pause(step / rate)

    def pause(self, duration):
        """Waits, but stops as soon as the client closes its end: a client that timed out should
        not keep a handler (and the request log) waiting for the rest of the stall."""
        deadline = time.monotonic() + duration
        while (left := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([self.connection], [], [], min(left, 0.1))
            if readable:
                try:
                    if self.connection.recv(1, socket.MSG_PEEK) == b"":
                        raise ClientGone
                except ConnectionResetError:
                    raise ClientGone
                # A request pipelined behind this one: it waits its turn, and so do we.
                time.sleep(min(left, 0.1))

    def reset_connection(self):
        deadline = time.monotonic() + RESET_DRAIN_SECONDS
        while time.monotonic() < deadline:
            unsent = struct.unpack("i", fcntl.ioctl(self.connection, termios.TIOCOUTQ, b"\0" * 4))[0]
            if unsent == 0:
                break
            time.sleep(0.005)
        # A zero linger time turns close() into a reset (RST) instead of an orderly FIN.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        os.close(self.connection.detach())


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root", help="directory whose files are served")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free one)")
    parser.add_argument("--port-file", help="file to write the port into once listening")
    arguments = parser.parse_args()
    server = serving.LoopbackServer(FaultHandler, arguments.port)
    server.root = os.path.abspath(arguments.root)
    server.request_log = RequestLog()
    serving.serve(server, arguments.port_file)


if __name__ == "__main__":
    main()
