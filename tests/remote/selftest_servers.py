#!/usr/bin/python3
"""Checks that each test server behaves as README.md says, with curl and Python's own HTTP
clients. Run by selftest.sh under with_servers.py, over the files selftest.sh makes: it reads
the servers' addresses from the environment that with_servers.py exports."""

import hashlib
import http.client
import json
import os
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import xml.etree.ElementTree as ElementTree

import servers

ENV = os.environ
DATA_DIR = ENV["SAFETENSORS_REMOTE_DATA_DIR"]
NGINX_URL = ENV["SAFETENSORS_REMOTE_HTTP_URL"]
FAULT_URL = ENV["SAFETENSORS_REMOTE_FAULT_URL"]
S3_URL = ENV["AWS_ENDPOINT_URL"]
BUCKET = ENV["SAFETENSORS_REMOTE_S3_BUCKET"]
REGION = ENV["AWS_REGION"]
ACCESS_KEY = ENV["AWS_ACCESS_KEY_ID"]
SECRET = ENV["AWS_SECRET_ACCESS_KEY"]
UNSIGNED = "x-amz-content-sha256: UNSIGNED-PAYLOAD"


def file_bytes(name):
    with open(os.path.join(DATA_DIR, name), "rb") as file:
        return file.read()


DATA = file_bytes("data.bin")
SIZE = len(DATA)
NESTED = file_bytes("sub/nested.bin")


def port_of(url):
    return urllib.parse.urlsplit(url).port


class Response:
    def __init__(self, status, headers, body, ending="complete"):
        self.status, self.headers, self.body, self.ending = status, headers, body, ending

    def header(self, name):
        return self.headers.get(name.lower())

    def s3_error_code(self):
        return ElementTree.fromstring(self.body).findtext("Code")


def request(base_url, method, path, headers=None, body=None, connection=None):
    """One request with http.client, on connection if given (kept alive)."""
    own = connection is None
    if own:
        connection = http.client.HTTPConnection("127.0.0.1", port_of(base_url), timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return Response(response.status, {name.lower(): value for name, value in response.getheaders()},
                        response.read())
    finally:
        if own:
            connection.close()


def curl(*arguments):
    """curl's answer to its last request: status, headers and body."""
    with tempfile.TemporaryDirectory() as directory:
        header_path, body_path = os.path.join(directory, "headers"), os.path.join(directory, "body")
        subprocess.run(["curl", "-s", "-D", header_path, "-o", body_path, *arguments], check=False, timeout=30)
        with open(header_path, "rb") as file:
            blocks = [block for block in file.read().decode("latin-1").split("\r\n\r\n") if block.strip()]
        lines = blocks[-1].split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = b""
        if os.path.exists(body_path):
            with open(body_path, "rb") as file:
                body = file.read()
        return Response(int(lines[0].split()[1]), headers, body)


class RawConnection:
    """A socket speaking HTTP/1.1 by hand, to see exactly what a server sends and how the
    connection ends: "complete" (the whole Content-Length), "closed" (FIN before it), "reset"
    (RST before it) or "timeout"."""

    def __init__(self, base_url, timeout=10):
        self.socket = socket.create_connection(("127.0.0.1", port_of(base_url)), timeout=timeout)
        self.buffer = b""

    def close(self):
        self.socket.close()

    def receive(self):
        data = self.socket.recv(65536)
        self.buffer += data
        return data

    def get(self, path, headers=None, method="GET", on_body_bytes=None):
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        self.socket.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        while b"\r\n\r\n" not in self.buffer:
            if not self.receive():
                raise AssertionError("connection ended before the response headers")
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = 0 if method == "HEAD" else int(headers["content-length"])
        ending = "complete"
        if on_body_bytes is not None:
            on_body_bytes(len(self.buffer))
        try:
            while len(self.buffer) < length:
                if not self.receive():
                    ending = "closed"
                    break
                if on_body_bytes is not None:
                    on_body_bytes(len(self.buffer))
        except ConnectionResetError:
            ending = "reset"
        except socket.timeout:
            ending = "timeout"
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return Response(int(status_line.split()[1]), headers, body, ending)


def raw_get(base_url, path, headers=None, timeout=10):
    connection = RawConnection(base_url, timeout)
    try:
        return connection.get(path, headers)
    finally:
        connection.close()


class NginxTest(unittest.TestCase):
    def access_log_lines(self):
        with open(ENV["SAFETENSORS_REMOTE_NGINX_ACCESS_LOG"]) as log:
            return [json.loads(line) for line in log]

    def wait_for_access_log(self, count):
        """nginx writes a line just after the last byte of its response: wait for it briefly."""
        deadline = time.monotonic() + 5
        while len(lines := self.access_log_lines()) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return lines

    def test_range(self):
        whole = request(NGINX_URL, "GET", "/data.bin")
        part = request(NGINX_URL, "GET", "/data.bin", {"Range": "bytes=100-199"})
        self.assertEqual(whole.status, 200)
        self.assertEqual(whole.body, DATA)
        self.assertEqual(whole.header("Accept-Ranges"), "bytes")
        self.assertEqual(part.status, 206)
        self.assertEqual(part.header("Content-Range"), f"bytes 100-199/{SIZE}")
        self.assertEqual(part.header("Content-Length"), "100")
        self.assertEqual(part.body, DATA[100:200])
        self.assertEqual(part.header("ETag"), whole.header("ETag"))

    def test_open_and_suffix_ranges(self):
        for range_header in (f"bytes={SIZE - 10}-", "bytes=-10", f"bytes={SIZE - 10}-{SIZE + 100}"):
            response = request(NGINX_URL, "GET", "/data.bin", {"Range": range_header})
            self.assertEqual(response.status, 206, range_header)
            self.assertEqual(response.header("Content-Range"), f"bytes {SIZE - 10}-{SIZE - 1}/{SIZE}")
            self.assertEqual(response.body, DATA[-10:])

    def test_unsatisfiable_range(self):
        response = request(NGINX_URL, "GET", "/data.bin", {"Range": f"bytes={SIZE}-"})
        self.assertEqual(response.status, 416)
        self.assertEqual(response.header("Content-Range"), f"bytes */{SIZE}")

    def test_if_match(self):
        etag = request(NGINX_URL, "HEAD", "/data.bin").header("ETag")
        matching = request(NGINX_URL, "GET", "/data.bin", {"Range": "bytes=0-9", "If-Match": etag})
        other = request(NGINX_URL, "GET", "/data.bin", {"Range": "bytes=0-9", "If-Match": '"other"'})
        self.assertEqual(matching.status, 206)
        self.assertEqual(matching.body, DATA[:10])
        self.assertEqual(other.status, 412)

    def test_redirect(self):
        response = request(NGINX_URL, "GET", "/redirect/sub/nested.bin?x=1")
        self.assertEqual(response.status, 302)
        self.assertEqual(response.header("Location"), f"{NGINX_URL}/sub/nested.bin?x=1")
        followed = curl("-L", "-r", "5-14", f"{NGINX_URL}/redirect/sub/nested.bin")
        self.assertEqual(followed.status, 206)
        self.assertEqual(followed.body, NESTED[5:15])
        escaped = "/sub/name%20with%20space%2Bplus.bin?a=%2F"
        self.assertEqual(request(NGINX_URL, "GET", "/redirect" + escaped).header("Location"), NGINX_URL + escaped)
        followed = curl("-L", f"{NGINX_URL}/redirect{escaped}")
        self.assertEqual((followed.status, followed.body), (200, file_bytes("sub/name with space+plus.bin")))

    def test_access_log_counts_requests_and_bytes_on_one_connection(self):
        before = len(self.access_log_lines())
        connection = http.client.HTTPConnection("127.0.0.1", port_of(NGINX_URL), timeout=10)
        answers = [request(NGINX_URL, method, path, headers, connection=connection) for method, path, headers in (
            ("HEAD", "/data.bin", {}),
            ("GET", "/data.bin", {"Range": "bytes=0-99"}),
            ("GET", "/sub/nested.bin", {}),
            ("GET", "/missing.bin", {"If-Match": '"x"'}),
        )]
        connection.close()
        lines = self.wait_for_access_log(before + 4)[before:]
        self.assertEqual([answer.status for answer in answers], [200, 206, 200, 404])
        connection_id = lines[0]["connection"]
        expected = [
            {"method": "HEAD", "uri": "/data.bin", "range": "", "if_match": "", "status": 200, "body_bytes_sent": 0},
            {"method": "GET", "uri": "/data.bin", "range": "bytes=0-99", "if_match": "", "status": 206,
             "body_bytes_sent": 100},
            {"method": "GET", "uri": "/sub/nested.bin", "range": "", "if_match": "", "status": 200,
             "body_bytes_sent": len(NESTED)},
            {"method": "GET", "uri": "/missing.bin", "range": "", "if_match": '"x"', "status": 404,
             "body_bytes_sent": len(answers[3].body)},
        ]
        for number, (line, wanted) in enumerate(zip(lines, expected), 1):
            self.assertEqual({name: line[name] for name in wanted}, wanted)
            self.assertEqual((line["connection"], line["connection_requests"]), (connection_id, number))
            self.assertGreater(line["bytes_sent"], line["body_bytes_sent"])
        self.assertEqual(len(lines), 4)


class S3Test(unittest.TestCase):
    def object_url(self, key):
        return f"{S3_URL}/{BUCKET}/{key}"

    def curl_s3(self, *arguments, key=ACCESS_KEY, secret=SECRET, region=REGION):
        return curl("--aws-sigv4", f"aws:amz:{region}:s3", "--user", f"{key}:{secret}", *arguments)

    def signed(self, method, path, headers=None, timestamp=None):
        return servers.sign_s3_request(method, f"{S3_URL}{path}", ACCESS_KEY, SECRET, headers, timestamp)

    def test_right_secret_reads_a_range(self):
        response = self.curl_s3("-H", UNSIGNED, "-r", "100-199", self.object_url("data.bin"))
        self.assertEqual(response.status, 206)
        self.assertEqual(response.header("Content-Range"), f"bytes 100-199/{SIZE}")
        self.assertEqual(response.body, DATA[100:200])
        self.assertEqual(response.header("ETag"), f'"{hashlib.md5(DATA).hexdigest()}"')

    def test_payload_hash_of_the_empty_body(self):
        empty_hash = hashlib.sha256(b"").hexdigest()
        response = self.curl_s3("-H", f"x-amz-content-sha256: {empty_hash}", self.object_url("sub/nested.bin"))
        self.assertEqual(response.status, 200)
        self.assertEqual(response.body, NESTED)

    def test_wrong_secret(self):
        response = self.curl_s3("-H", UNSIGNED, self.object_url("data.bin"),
                                secret=ENV["SAFETENSORS_REMOTE_S3_WRONG_SECRET_ACCESS_KEY"])
        self.assertEqual(response.status, 403)
        self.assertEqual(response.s3_error_code(), "SignatureDoesNotMatch")

    def test_unknown_access_key(self):
        response = self.curl_s3("-H", UNSIGNED, self.object_url("data.bin"), key="AKIAUNKNOWNKEY000000")
        self.assertEqual(response.status, 403)
        self.assertEqual(response.s3_error_code(), "InvalidAccessKeyId")

    def test_anonymous_request(self):
        response = curl(self.object_url("data.bin"))
        self.assertEqual(response.status, 403)
        self.assertEqual(response.s3_error_code(), "AccessDenied")

    def test_wrong_region(self):
        response = self.curl_s3("-H", UNSIGNED, self.object_url("data.bin"), region="eu-west-1")
        self.assertEqual(response.status, 400)
        self.assertEqual(response.s3_error_code(), "AuthorizationHeaderMalformed")

    def test_missing_payload_hash_header(self):
        headers = self.signed("GET", f"/{BUCKET}/data.bin")
        del headers["X-Amz-Content-SHA256"]
        response = request(S3_URL, "GET", f"/{BUCKET}/data.bin", headers)
        self.assertEqual(response.status, 400)
        self.assertEqual(response.s3_error_code(), "InvalidRequest")

    def test_malformed_payload_hash_header(self):
        response = self.curl_s3("-H", "x-amz-content-sha256: not-a-hash", self.object_url("data.bin"))
        self.assertEqual(response.status, 400)
        self.assertEqual(response.s3_error_code(), "InvalidArgument")

    def test_request_time_too_skewed(self):
        past = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() - 20 * 60))
        response = request(S3_URL, "GET", f"/{BUCKET}/data.bin", self.signed("GET", f"/{BUCKET}/data.bin",
                                                                            timestamp=past))
        self.assertEqual(response.status, 403)
        self.assertEqual(response.s3_error_code(), "RequestTimeTooSkewed")

    def test_unsigned_amz_header(self):
        headers = self.signed("GET", f"/{BUCKET}/data.bin")
        headers["x-amz-meta-extra"] = "added after signing"
        response = request(S3_URL, "GET", f"/{BUCKET}/data.bin", headers)
        self.assertEqual(response.status, 403)
        self.assertEqual(response.s3_error_code(), "AccessDenied")

    def test_signed_payload_is_checked(self):
        body = b"checked payload\n" * 1000
        body_hash = hashlib.sha256(body).hexdigest()
        with tempfile.NamedTemporaryFile() as file:
            file.write(body)
            file.flush()
            stored = self.curl_s3("-X", "PUT", "-H", f"x-amz-content-sha256: {body_hash}", "--data-binary",
                                  f"@{file.name}", self.object_url("uploaded/checked.bin"))
            refused = self.curl_s3("-X", "PUT", "-H", f"x-amz-content-sha256: {hashlib.sha256(b'x').hexdigest()}",
                                   "--data-binary", f"@{file.name}", self.object_url("uploaded/refused.bin"))
        self.assertEqual(stored.status, 200)
        self.assertEqual(self.curl_s3("-H", UNSIGNED, self.object_url("uploaded/checked.bin")).body, body)
        self.assertEqual(refused.status, 400)
        self.assertEqual(refused.s3_error_code(), "XAmzContentSHA256Mismatch")
        missing = self.curl_s3("-H", UNSIGNED, self.object_url("uploaded/refused.bin"))
        self.assertEqual(missing.status, 404)
        self.assertEqual(missing.s3_error_code(), "NoSuchKey")

    def test_session_token(self):
        key, secret = ENV["SAFETENSORS_REMOTE_S3_SESSION_ACCESS_KEY_ID"], ENV["SAFETENSORS_REMOTE_S3_SESSION_SECRET_ACCESS_KEY"]
        token = ENV["SAFETENSORS_REMOTE_S3_SESSION_TOKEN"]
        with_token = self.curl_s3("-H", UNSIGNED, "-H", f"x-amz-security-token: {token}", "-r", "0-9",
                                  self.object_url("data.bin"), key=key, secret=secret)
        without = self.curl_s3("-H", UNSIGNED, self.object_url("data.bin"), key=key, secret=secret)
        wrong = self.curl_s3("-H", UNSIGNED, "-H", "x-amz-security-token: wrong", self.object_url("data.bin"),
                             key=key, secret=secret)
        self.assertEqual((with_token.status, with_token.body), (206, DATA[:10]))
        self.assertEqual((without.status, without.s3_error_code()), (403, "InvalidAccessKeyId"))
        self.assertEqual((wrong.status, wrong.s3_error_code()), (400, "InvalidToken"))

    def test_if_match(self):
        etag = f'"{hashlib.md5(DATA).hexdigest()}"'
        matching = self.curl_s3("-H", UNSIGNED, "-H", f"If-Match: {etag}", "-r", "0-9", self.object_url("data.bin"))
        other = self.curl_s3("-H", UNSIGNED, "-H", 'If-Match: "0123"', "-r", "0-9", self.object_url("data.bin"))
        self.assertEqual((matching.status, matching.body), (206, DATA[:10]))
        self.assertEqual((other.status, other.s3_error_code()), (412, "PreconditionFailed"))

    def test_connection_kept_alive(self):
        with tempfile.TemporaryDirectory() as directory:
            result = subprocess.run(
                ["curl", "-s", "--aws-sigv4", f"aws:amz:{REGION}:s3", "--user", f"{ACCESS_KEY}:{SECRET}", "-H", UNSIGNED,
                 "-w", "%{http_code} %{num_connects}\n", "-o", f"{directory}/1", self.object_url("data.bin"),
                 "-o", f"{directory}/2", self.object_url("sub/nested.bin")],
                capture_output=True, text=True, timeout=30)
            self.assertEqual(result.stdout, "200 1\n200 0\n")
            with open(f"{directory}/2", "rb") as file:
                self.assertEqual(file.read(), NESTED)

    def test_listing_with_a_query(self):
        response = self.curl_s3("-H", UNSIGNED, f"{S3_URL}/{BUCKET}?list-type=2&prefix=sub%2F")
        self.assertEqual(response.status, 200)
        # s3rver's namespace is not S3's (http://s3.amazonaws.com/doc/2006-03-01/): match any.
        keys = [element.text for element in ElementTree.fromstring(response.body).iterfind(".//{*}Key")]
        self.assertEqual(keys, ["sub/name with space+plus.bin", "sub/nested.bin"])

    def test_key_that_needs_escaping(self):
        response = self.curl_s3("-H", UNSIGNED, self.object_url("sub/name%20with%20space%2Bplus.bin"))
        self.assertEqual((response.status, response.body), (200, file_bytes("sub/name with space+plus.bin")))

    def test_head_then_get_on_one_connection(self):
        path = f"/{BUCKET}/data.bin"
        connection = http.client.HTTPConnection("127.0.0.1", port_of(S3_URL), timeout=10)
        head = request(S3_URL, "HEAD", path, self.signed("HEAD", path), connection=connection)
        socket_after_head = connection.sock
        ranged = request(S3_URL, "GET", path, self.signed("GET", path, {"Range": "bytes=0-9"}), connection=connection)
        self.assertIs(connection.sock, socket_after_head)
        connection.close()
        self.assertEqual((head.status, head.header("Content-Length"), head.body), (200, str(SIZE), b""))
        self.assertEqual(head.header("ETag"), f'"{hashlib.md5(DATA).hexdigest()}"')
        self.assertEqual((ranged.status, ranged.body), (206, DATA[:10]))

    def test_every_data_file_was_uploaded(self):
        for directory, _, files in os.walk(DATA_DIR):
            for name in files:
                key = os.path.relpath(os.path.join(directory, name), DATA_DIR)
                path = f"/{BUCKET}/{urllib.parse.quote(key)}"
                response = request(S3_URL, "GET", path, self.signed("GET", path))
                self.assertEqual((response.status, response.body), (200, file_bytes(key)), key)


class FaultServerTest(unittest.TestCase):
    def setUp(self):
        self.assertEqual(request(FAULT_URL, "POST", "/control/reset").status, 204)

    def log(self):
        return json.loads(request(FAULT_URL, "GET", "/control/log").body)

    def test_range_etag_and_log(self):
        response = request(FAULT_URL, "GET", "/data.bin", {"Range": "bytes=100-199"})
        self.assertEqual(response.status, 206)
        self.assertEqual(response.header("Content-Range"), f"bytes 100-199/{SIZE}")
        self.assertEqual(response.header("Content-Length"), "100")
        self.assertEqual(response.header("Accept-Ranges"), "bytes")
        self.assertRegex(response.header("ETag"), r'^"[0-9a-f]+-[0-9a-f]+"$')
        self.assertEqual(response.body, DATA[100:200])
        log = self.log()
        self.assertEqual(log, [{"method": "GET", "path": "/data.bin", "file": "data.bin", "range": "bytes=100-199",
                                "if_match": None, "authorization": False, "status": 206, "bytes_sent": 100, "fault": None,
                                "connection": log[0]["connection"]}])

    def test_whole_file_head_and_suffix_range(self):
        self.assertEqual(request(FAULT_URL, "GET", "/data.bin").body, DATA)
        head = request(FAULT_URL, "HEAD", "/data.bin")
        self.assertEqual((head.status, head.header("Content-Length"), head.body), (200, str(SIZE), b""))
        suffix = request(FAULT_URL, "GET", "/sub/nested.bin", {"Range": "bytes=-7"})
        self.assertEqual(suffix.header("Content-Range"), f"bytes {len(NESTED) - 7}-{len(NESTED) - 1}/{len(NESTED)}")
        self.assertEqual(suffix.body, NESTED[-7:])

    def test_if_match_and_unsatisfiable_range(self):
        etag = request(FAULT_URL, "HEAD", "/data.bin").header("ETag")
        self.assertEqual(request(FAULT_URL, "GET", "/data.bin", {"Range": "bytes=0-9", "If-Match": etag}).status, 206)
        self.assertEqual(request(FAULT_URL, "GET", "/data.bin", {"If-Match": '"other"'}).status, 412)
        unsatisfiable = request(FAULT_URL, "GET", "/data.bin", {"Range": f"bytes={SIZE}-"})
        self.assertEqual((unsatisfiable.status, unsatisfiable.header("Content-Range")), (416, f"bytes */{SIZE}"))

    def test_keep_alive(self):
        connection = RawConnection(FAULT_URL)
        first = connection.get("/data.bin", {"Range": "bytes=0-9"})
        second = connection.get("/sub/nested.bin")
        connection.close()
        self.assertEqual((first.body, second.body), (DATA[:10], NESTED))
        log = self.log()
        self.assertEqual(log[0]["connection"], log[1]["connection"])

    def test_drop_after(self):
        path = "/fault/drop-after=1000,times=2/data.bin"
        answers = [raw_get(FAULT_URL, path, {"Range": "bytes=0-9999"}) for _ in range(3)]
        for dropped in answers[:2]:
            self.assertEqual((dropped.status, dropped.header("Content-Length")), (206, "10000"))
            self.assertEqual(dropped.header("Content-Range"), f"bytes 0-9999/{SIZE}")
            self.assertEqual((dropped.body, dropped.ending), (DATA[:1000], "reset"))
        self.assertEqual((answers[2].body, answers[2].ending), (DATA[:10000], "complete"))
        self.assertEqual([(entry["bytes_sent"], entry["fault"]) for entry in self.log()],
                         [(1000, "drop-after=1000,times=2")] * 2 + [(10000, None)])

    def test_short_body(self):
        answer = raw_get(FAULT_URL, "/fault/short-body=500/data.bin", {"Range": "bytes=100-1099"})
        self.assertEqual((answer.status, answer.header("Content-Length")), (206, "1000"))
        self.assertEqual((answer.body, answer.ending), (DATA[100:600], "closed"))

    def test_short_length(self):
        connection = RawConnection(FAULT_URL)
        short = connection.get("/fault/short-length=300/data.bin", {"Range": "bytes=0-999"})
        following = connection.get("/data.bin", {"Range": "bytes=0-9"})
        connection.close()
        self.assertEqual((short.status, short.header("Content-Length")), (206, "300"))
        self.assertEqual(short.header("Content-Range"), f"bytes 0-999/{SIZE}")
        self.assertEqual((short.body, short.ending), (DATA[:300], "complete"))
        self.assertEqual(following.body, DATA[:10])

    def test_wrong_range(self):
        later = request(FAULT_URL, "GET", "/fault/wrong-range=5/data.bin", {"Range": "bytes=100-199"})
        earlier = request(FAULT_URL, "GET", "/fault/wrong-range=-150/data.bin", {"Range": "bytes=100-199"})
        self.assertEqual((later.status, later.header("Content-Range")), (206, f"bytes 105-204/{SIZE}"))
        self.assertEqual(later.body, DATA[105:205])
        self.assertEqual((earlier.header("Content-Range"), earlier.body), (f"bytes 0-49/{SIZE}", DATA[0:50]))

    def test_status_bursts(self):
        path = "/fault/status=503,times=2,retry-after=1/data.bin"
        answers = [request(FAULT_URL, "GET", path, {"Range": "bytes=0-9"}) for _ in range(3)]
        for refused in answers[:2]:
            self.assertEqual((refused.status, refused.header("Retry-After")), (503, "1"))
            self.assertEqual(refused.body, b"injected status 503\n")
        self.assertEqual((answers[2].status, answers[2].body), (206, DATA[:10]))
        too_many = request(FAULT_URL, "GET", "/fault/status=429/data.bin")
        self.assertEqual((too_many.status, too_many.header("Retry-After")), (429, None))

    def test_ignore_range(self):
        answer = request(FAULT_URL, "GET", "/fault/ignore-range/data.bin", {"Range": "bytes=0-9"})
        self.assertEqual((answer.status, answer.header("Content-Range"), answer.header("Accept-Ranges")),
                         (200, None, None))
        self.assertEqual(answer.body, DATA)

    def test_replace_after(self):
        path = "/fault/replace-after=1/data.bin"
        original = request(FAULT_URL, "GET", path, {"Range": "bytes=0-99"})
        replaced = request(FAULT_URL, "GET", path, {"Range": "bytes=0-99"})
        stale = request(FAULT_URL, "GET", path, {"Range": "bytes=0-99", "If-Match": original.header("ETag")})
        self.assertEqual(original.body, DATA[:100])
        self.assertNotEqual(replaced.header("ETag"), original.header("ETag"))
        self.assertEqual(replaced.header("Content-Range"), f"bytes 0-99/{SIZE}")
        self.assertEqual(replaced.body, bytes(255 - value for value in DATA[:100]))
        self.assertEqual(stale.status, 412)

    def test_replace_after_with_another_size(self):
        grown = request(FAULT_URL, "GET", "/fault/replace-after=0,size-delta=10/data.bin",
                        {"Range": f"bytes={SIZE - 5}-"})
        shrunk = request(FAULT_URL, "GET", "/fault/replace-after=0,size-delta=-10/data.bin", {"Range": "bytes=0-0"})
        self.assertEqual(grown.header("Content-Range"), f"bytes {SIZE - 5}-{SIZE + 9}/{SIZE + 10}")
        self.assertEqual(grown.body, bytes(255 - value for value in DATA[-5:]) + bytes(10))
        self.assertEqual(shrunk.header("Content-Range"), f"bytes 0-0/{SIZE - 10}")

    def test_delay(self):
        began = time.monotonic()
        answer = request(FAULT_URL, "GET", "/fault/delay=0.5,times=1/data.bin", {"Range": "bytes=0-9"})
        self.assertGreaterEqual(time.monotonic() - began, 0.5)
        self.assertEqual(answer.body, DATA[:10])
        began = time.monotonic()
        request(FAULT_URL, "GET", "/fault/delay=0.5,times=1/data.bin", {"Range": "bytes=0-9"})
        self.assertLess(time.monotonic() - began, 0.5)

    def test_stall_after(self):
        arrivals = []
        connection = RawConnection(FAULT_URL)
        answer = connection.get("/fault/stall-after=100,seconds=1/data.bin", {"Range": "bytes=0-999"},
                                on_body_bytes=lambda count: arrivals.append((count, time.monotonic())))
        connection.close()
        self.assertEqual((answer.body, answer.ending), (DATA[:1000], "complete"))
        before = [moment for count, moment in arrivals if count <= 100]
        after = [moment for count, moment in arrivals if count > 100]
        self.assertEqual(max(count for count, _ in arrivals if count <= 100), 100)
        self.assertGreaterEqual(min(after) - max(before), 0.9)

    def test_trickle(self):
        arrivals = []
        connection = RawConnection(FAULT_URL)
        began = time.monotonic()
        answer = connection.get("/fault/trickle=200,times=1/data.bin", {"Range": "bytes=0-99"},
                                on_body_bytes=lambda count: arrivals.append(count))
        connection.close()
        self.assertEqual((answer.body, answer.ending), (DATA[:100], "complete"))
        self.assertGreaterEqual(time.monotonic() - began, 0.4, "100 bytes at 200 a second take half a second")
        self.assertGreaterEqual(len(arrivals), 5, "in pieces of 20 bytes")
        self.assertEqual(request(FAULT_URL, "GET", "/fault/trickle=200,times=1/data.bin").body, DATA)

    def test_stall_times_out_a_client(self):
        answer = raw_get(FAULT_URL, "/fault/stall-after=100,seconds=30/data.bin", {"Range": "bytes=0-999"}, timeout=0.5)
        self.assertEqual((answer.body, answer.ending), (DATA[:100], "timeout"))
        began = time.monotonic()
        self.assertEqual([(entry["status"], entry["bytes_sent"]) for entry in self.log()], [(206, 100)])
        self.assertLess(time.monotonic() - began, 2, "the server stops stalling once the client has gone")

    def test_reset_restarts_the_counts(self):
        path = "/fault/status=500,times=1/data.bin"
        self.assertEqual([request(FAULT_URL, "GET", path).status for _ in range(2)], [500, 200])
        self.assertEqual(len(self.log()), 2)
        self.setUp()
        self.assertEqual(self.log(), [])
        self.assertEqual(request(FAULT_URL, "GET", path).status, 500)

    def test_counts_are_per_file(self):
        path = "/fault/status=503,times=1/"
        statuses = [request(FAULT_URL, "GET", path + name).status for name in ("data.bin", "sub/nested.bin", "data.bin")]
        self.assertEqual(statuses, [503, 503, 200])

    def test_bad_requests(self):
        for path, status in (("/fault/drop-after=x/data.bin", 400), ("/fault/bogus/data.bin", 400),
                             ("/fault/times=2/data.bin", 400), ("/fault/stall-after=5/data.bin", 400),
                             ("/fault/replace-after=1,times=2/data.bin", 400), ("/missing.bin", 404),
                             ("/../selftest.sh", 404), ("/sub", 404)):
            self.assertEqual(raw_get(FAULT_URL, path).status, status, path)


class RunnerTest(unittest.TestCase):
    def test_servers_listen_on_loopback_only(self):
        """Every listening socket of the runner's servers (the processes under with_servers.py,
        an ancestor of this one) is bound to 127.0.0.1."""
        parents, children = {}, {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as file:
                        parents[int(entry)] = int(file.read().rsplit(")", 1)[1].split()[1])
                except OSError:
                    continue
                children.setdefault(parents[int(entry)], []).append(int(entry))
        runner = os.getpid()
        while True:
            with open(f"/proc/{runner}/cmdline", "rb") as file:
                if b"with_servers.py" in file.read():
                    break
            runner = parents[runner]
        ancestors, process = set(), os.getpid()
        while process != runner:
            ancestors.add(process)
            process = parents[process]
        processes, pending = set(), list(children.get(runner, []))
        while pending:
            process = pending.pop()
            if process not in ancestors:
                processes.add(process)
                pending += children.get(process, [])
        inodes = set()
        for process in processes:
            try:
                targets = [os.readlink(f"/proc/{process}/fd/{fd}") for fd in os.listdir(f"/proc/{process}/fd")]
            except OSError:
                continue
            inodes |= {target[len("socket:["):-1] for target in targets if target.startswith("socket:[")}
        listening = []
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with open(table) as file:
                for line in file.readlines()[1:]:
                    fields = line.split()
                    if fields[3] == "0A" and fields[9] in inodes:
                        listening.append(fields[1])
        ports = sorted(port_of(url) for url in (NGINX_URL, S3_URL, FAULT_URL))
        self.assertGreaterEqual(len(listening), 4, "nginx, s3rver, the proxy and the fault server")
        self.assertTrue(all(address.startswith("0100007F:") for address in listening), listening)
        self.assertTrue(set(ports) <= {int(address.split(":")[1], 16) for address in listening})

    def test_caller_aws_variables_do_not_leak(self):
        self.assertNotIn("AWS_SESSION_TOKEN", ENV)
        self.assertNotIn("AWS_PROFILE", ENV)
        self.assertEqual(ENV["AWS_REGION"], "us-east-1")


if __name__ == "__main__":
    unittest.main(verbosity=2)
