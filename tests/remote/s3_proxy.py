#!/usr/bin/python3
"""An S3 endpoint on 127.0.0.1 that checks every request's AWS Signature Version 4 the way S3 does
and forwards the requests that pass to s3rver, which speaks S3 but checks no V4 signature (its
source says so, and a wrong secret is accepted). Signatures are recomputed by botocore's
S3SigV4Auth, from Debian's python3-botocore: run this with /usr/bin/python3.

What is checked, and the S3 error each failure gets, is listed in README.md ("S3")."""

import argparse
import datetime
import hashlib
import hmac
import http.client
import re
import secrets
import select
import tempfile
import urllib.parse
import xml.etree.ElementTree as ElementTree

import botocore.auth
import botocore.awsrequest
import botocore.credentials

import serving

CHUNK_BYTES = 64 * 1024
# Signed request bodies are held until their hash is checked; past this size, on disk.
SPOOL_IN_MEMORY_BYTES = 16 * 1024 * 1024
ALGORITHM = "AWS4-HMAC-SHA256"
MAX_CLOCK_SKEW = datetime.timedelta(minutes=15)
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
HOP_BY_HOP_HEADERS = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
                      "trailer", "transfer-encoding", "upgrade"}
# Not passed to s3rver: Authorization, because s3rver would look the access key up in its own table
# of keys and refuse ours (it serves anonymous requests, and the signature has passed here), and
# Expect, because http.server has already answered "100 Continue" and read the body.
NOT_FORWARDED_HEADERS = HOP_BY_HOP_HEADERS | {"authorization", "expect"}


class S3Error(Exception):
    def __init__(self, status, code, message, **details):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


class SignedHeadersVerifier(botocore.auth.S3SigV4Auth):
    """botocore's S3 signer, given the headers the client says it signed: when botocore signs, it
    chooses the headers itself (leaving out User-Agent, for one); a verifier must take the
    client's list, with each header's values as received."""

    def __init__(self, credentials, region, signed_header_names, received_headers):
        super().__init__(credentials, "s3", region)
        self.signed_header_names = signed_header_names
        self.received_headers = received_headers

    def headers_to_sign(self, request):
        headers = botocore.awsrequest.HTTPHeaders()
        for name in self.signed_header_names:
            for value in self.received_headers.get_all(name, []):
                headers[name] = value
        return headers


def parse_authorization(value):
    """The Credential, SignedHeaders and Signature of an AWS4-HMAC-SHA256 Authorization header."""
    fields = {}
    for part in value[len(ALGORITHM):].split(","):
        name, _, field = part.strip().partition("=")
        fields[name] = field
    missing = [name for name in ("Credential", "SignedHeaders", "Signature") if not fields.get(name)]
    if missing:
        raise S3Error(400, "AuthorizationHeaderMalformed",
                      f"The authorization header is malformed; it lacks {', '.join(missing)}.")
    credential = fields["Credential"].split("/")
    if len(credential) != 5:
        raise S3Error(400, "AuthorizationHeaderMalformed",
                      "The authorization header is malformed; the Credential is mal-formed; expecting "
                      "\"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".")
    return credential, fields["SignedHeaders"].split(";"), fields["Signature"]


def canonical_path(raw_path):
    """S3 signs the object key URI-encoded once, whatever escaping the client sent on the wire."""
    return urllib.parse.quote(urllib.parse.unquote(raw_path), safe="/~")


def query_pairs(raw_query):
    """Decoded name-value pairs; "+" stays "+", as S3 reads it, where parse_qsl would make a space."""
    pairs = []
    for item in raw_query.split("&"):
        if item:
            name, _, value = item.partition("=")
            pairs.append((urllib.parse.unquote(name), urllib.parse.unquote(value)))
    return pairs


class LimitedReader:
    """The request body, read up to its Content-Length and no further, for http.client to send."""

    def __init__(self, stream, length):
        self.stream, self.left = stream, length

    def read(self, size=-1):
        size = self.left if size < 0 else min(size, self.left)
        data = self.stream.read(size) if size else b""
        self.left -= len(data)
        return data


class ProxyHandler(serving.LoopbackHandler):
    upstream = None

    def do_GET(self):
        self.proxy()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_GET

    def finish(self):
        if self.upstream is not None:
            self.upstream.close()
        super().finish()

    def proxy(self):
        self.body_length = int(self.headers.get("Content-Length") or 0)
        self.body_unread = self.body_length > 0
        try:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                raise S3Error(411, "MissingContentLength", "You must provide the Content-Length HTTP header.")
            payload_hash = self.authenticate()
            body = self.read_body(payload_hash)
            self.forward(body)
        except S3Error as error:
            self.send_s3_error(error)
        except (BrokenPipeError, ConnectionResetError):
            # The client left mid-answer: what s3rver still had to send is not wanted.
            self.close_connection = True
            if self.upstream is not None:
                self.upstream.close()

    def authenticate(self):
        """Checks the request's signature; returns its x-amz-content-sha256."""
        split = urllib.parse.urlsplit(self.path)
        query_names = {name.lower() for name, _ in query_pairs(split.query)}
        if query_names & {"x-amz-algorithm", "x-amz-signature", "signature"}:
            raise S3Error(501, "NotImplemented", "This test endpoint checks signatures in the Authorization "
                          "header only, not presigned URLs.")
        authorization = self.headers.get("Authorization")
        if authorization is None:
            raise S3Error(403, "AccessDenied", "Access Denied")
        if not authorization.startswith(ALGORITHM + " "):
            raise S3Error(400, "InvalidRequest", "The authorization mechanism you have provided is not "
                          "supported. Please use AWS4-HMAC-SHA256.")
        (access_key, scope_date, scope_region, scope_service, terminator), signed_headers, signature = \
            parse_authorization(authorization)
        if access_key not in self.server.keys:
            raise S3Error(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist "
                          "in our records.", AWSAccessKeyId=access_key)
        secret_key, session_token = self.server.keys[access_key]

        amz_date = self.headers.get("X-Amz-Date", "")
        try:
            request_time = datetime.datetime.strptime(amz_date, botocore.auth.SIGV4_TIMESTAMP).replace(
                tzinfo=datetime.timezone.utc)
        except ValueError:
            raise S3Error(403, "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header")
        if scope_date != amz_date[:8]:
            raise S3Error(400, "AuthorizationHeaderMalformed", "The authorization header is malformed; "
                          "Invalid credential date. Date is not the same as X-Amz-Date.")
        if scope_region != self.server.region:
            raise S3Error(400, "AuthorizationHeaderMalformed", "The authorization header is malformed; the "
                          f"region '{scope_region}' is wrong; expecting '{self.server.region}'",
                          Region=self.server.region)
        if scope_service != "s3" or terminator != "aws4_request":
            raise S3Error(400, "AuthorizationHeaderMalformed", "The authorization header is malformed; "
                          f"incorrect service '{scope_service}' or terminator '{terminator}'.")
        now = datetime.datetime.now(datetime.timezone.utc)
        if abs(now - request_time) > MAX_CLOCK_SKEW:
            raise S3Error(403, "RequestTimeTooSkewed", "The difference between the request time and the "
                          "current time is too large.", RequestTime=amz_date,
                          ServerTime=now.strftime("%Y-%m-%dT%H:%M:%SZ"), MaxAllowedSkewMilliseconds="900000")

        payload_hash = self.headers.get("X-Amz-Content-SHA256")
        if payload_hash is None:
            raise S3Error(400, "InvalidRequest", "Missing required header for this request: x-amz-content-sha256")
        if payload_hash.startswith("STREAMING-"):
            raise S3Error(501, "NotImplemented", "This test endpoint does not take chunk-signed (streaming) "
                          "uploads.", Header="x-amz-content-sha256")
        if payload_hash != UNSIGNED_PAYLOAD and not re.fullmatch("[0-9a-f]{64}", payload_hash):
            raise S3Error(400, "InvalidArgument", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, "
                          "STREAMING-AWS4-HMAC-SHA256-PAYLOAD, or a valid sha256 value.",
                          ArgumentName="x-amz-content-sha256", ArgumentValue=payload_hash)

        present = {name.lower() for name in self.headers.keys()}
        unsigned = sorted(name for name in present if name.startswith("x-amz-") and name not in signed_headers)
        if "host" not in signed_headers:
            unsigned.insert(0, "host")
        if unsigned:
            raise S3Error(403, "AccessDenied", "There were headers present in the request which were not "
                          "signed", HeadersNotSigned=", ".join(unsigned))
        given_token = self.headers.get("X-Amz-Security-Token")
        if session_token is not None and given_token is None:
            raise S3Error(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist "
                          "in our records.", AWSAccessKeyId=access_key)
        if given_token is not None and given_token != session_token:
            raise S3Error(400, "InvalidToken", "The provided token is malformed or otherwise invalid.",
                          Token=given_token)

        request = botocore.awsrequest.AWSRequest(
            method=self.command, url=f"http://{self.headers.get('Host', '')}{canonical_path(split.path)}",
            params=query_pairs(split.query), headers={"X-Amz-Content-SHA256": payload_hash})
        request.context["timestamp"] = amz_date
        verifier = SignedHeadersVerifier(botocore.credentials.Credentials(access_key, secret_key),
                                         self.server.region, signed_headers, self.headers)
        canonical_request = verifier.canonical_request(request)
        string_to_sign = verifier.string_to_sign(request, canonical_request)
        expected = verifier.signature(string_to_sign, request)
        if not hmac.compare_digest(expected, signature):
            raise S3Error(403, "SignatureDoesNotMatch", "The request signature we calculated does not match "
                          "the signature you provided. Check your key and signing method.",
                          AWSAccessKeyId=access_key, StringToSign=string_to_sign, SignatureProvided=signature,
                          CanonicalRequest=canonical_request)
        return payload_hash

    def read_body(self, payload_hash):
        """The body to forward: streamed as it arrives when unsigned; read whole and checked first
        when signed, as S3 stores nothing whose hash does not match."""
        if payload_hash == UNSIGNED_PAYLOAD:
            return LimitedReader(self.rfile, self.body_length) if self.body_length else None
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES)
        digest = hashlib.sha256()
        left = self.body_length
        while left > 0:
            data = self.rfile.read(min(left, CHUNK_BYTES))
            if not data:
                raise S3Error(400, "IncompleteBody", "You did not provide the number of bytes specified by "
                              "the Content-Length HTTP header")
            digest.update(data)
            spool.write(data)
            left -= len(data)
        self.body_unread = False
        if digest.hexdigest() != payload_hash:
            raise S3Error(400, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does "
                          "not match what was computed.", ClientComputedContentSHA256=payload_hash,
                          S3ComputedContentSHA256=digest.hexdigest())
        spool.seek(0)
        return spool if self.body_length else None

    def forward(self, body):
        headers = [(name, value) for name, value in self.headers.items()
                   if name.lower() not in NOT_FORWARDED_HEADERS]
        replayable = not isinstance(body, LimitedReader)
        for attempt in (1, 2):
            reused = self.upstream is not None and self.upstream.sock is not None
            if reused and select.select([self.upstream.sock], [], [], 0)[0]:
                # Readable while idle: s3rver closed it (its keep-alive timeout is 5 s).
                self.upstream.close()
                reused = False
            if self.upstream is None:
                self.upstream = http.client.HTTPConnection(self.server.upstream_host, self.server.upstream_port,
                                                           timeout=300, blocksize=CHUNK_BYTES)
            try:
                self.upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for name, value in headers:
                    self.upstream.putheader(name, value)
                self.upstream.endheaders(body)
                self.body_unread = False
                response = self.upstream.getresponse()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as error:
                self.upstream.close()
                if attempt == 2 or not reused or not replayable:
                    raise S3Error(502, "BadGateway", f"s3rver did not answer: {error}")
                if body is not None:
                    body.seek(0)
        self.relay(response)

    def relay(self, response):
        if_match = self.headers.get("If-Match")
        etag = response.getheader("ETag")
        if (if_match is not None and self.command in ("GET", "HEAD") and response.status in (200, 206)
                and not any(tag.strip() in ("*", etag) for tag in if_match.split(","))):
            # s3rver ignores If-Match; S3 answers 412. The body is not wanted: drop the connection
            # rather than read it.
            self.upstream.close()
            raise S3Error(412, "PreconditionFailed", "At least one of the pre-conditions you specified did "
                          "not hold", Condition="If-Match")
        has_body = self.command != "HEAD" and response.status not in (204, 304)
        rechunk = has_body and response.length is None
        self.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in HOP_BY_HOP_HEADERS:
                self.send_header(name, value)
        if rechunk:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        while data := response.read1(CHUNK_BYTES):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if rechunk else data)
        # read1 does not mark a response read to its Content-Length as done, and http.client
        # would refuse the connection's next request.
        response.close()
        if rechunk:
            self.wfile.write(b"0\r\n\r\n")

    def send_s3_error(self, error):
        root = ElementTree.Element("Error")
        for name, value in (("Code", error.code), ("Message", error.message), *error.details.items(),
                            ("RequestId", secrets.token_hex(8).upper())):
            ElementTree.SubElement(root, name).text = value
        body = b'<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(root)
        self.send_response(error.status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        if self.body_unread:
            # The body of a refused request is not read: the connection cannot carry another.
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--upstream-port", type=int, required=True, help="port of s3rver on 127.0.0.1")
    parser.add_argument("--region", required=True)
    parser.add_argument("--key", action="append", required=True, metavar="ACCESS_KEY:SECRET[:SESSION_TOKEN]",
                        help="a known access key; with a session token, requests must carry it")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free one)")
    parser.add_argument("--port-file", help="file to write the port into once listening")
    arguments = parser.parse_args()
    server = serving.LoopbackServer(ProxyHandler, arguments.port)
    server.upstream_host, server.upstream_port = "127.0.0.1", arguments.upstream_port
    server.region = arguments.region
    server.keys = {}
    for key in arguments.key:
        access_key, secret_key, *token = key.split(":", 2)
        server.keys[access_key] = (secret_key, token[0] if token else None)
    serving.serve(server, arguments.port_file)


if __name__ == "__main__":
    main()
