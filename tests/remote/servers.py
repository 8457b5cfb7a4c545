"""Starts the test servers of tests/remote on 127.0.0.1 and stops them: nginx, s3rver behind the
signature-checking s3_proxy.py, and fault_server.py, all serving one directory of test files.
with_servers.py is the command-line runner; README.md says what each server is for."""

import ctypes
import datetime
import fcntl
import fnmatch
import hashlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse

import botocore.auth
import botocore.awsrequest
import botocore.credentials

import nginx

HERE = os.path.dirname(os.path.abspath(__file__))
S3RVER_PACKAGE = os.path.join(HERE, "s3rver")
PYTHON = sys.executable

REGION = "us-east-1"
BUCKET = "safetensors-test"
# AWS's own example keys: recognisably not real ones.
ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
WRONG_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYWRONGKEY0"
SESSION_ACCESS_KEY_ID = "ASIAIOSFODNN7EXAMPLE"
SESSION_SECRET_ACCESS_KEY = "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"
SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLESESSIONTOKENFORSAFETENSORSTESTS"

STOP_SECONDS = 5
NGINX_PORT_ATTEMPTS = 3
NPM_INSTALL_SECONDS = 300
LOG_TAIL_BYTES = 2000


class StartError(Exception):
    pass


def log_tail(path):
    try:
        with open(path, "rb") as file:
            file.seek(max(0, os.path.getsize(path) - LOG_TAIL_BYTES))
            return file.read().decode(errors="replace").rstrip() or "(empty)"
    except OSError:
        return "(no log)"


def die_with_parent():
    """Runs in the child before exec: if the runner is killed outright (SIGKILL), its servers get
    SIGTERM from the kernel instead of living on."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Server:
    """A started server process: its own session (a Ctrl-C at the terminal reaches the runner
    and the command, which stop the servers in order) with its output in a log file."""

    def __init__(self, name, command, log_path):
        self.name, self.log_path, self.url = name, log_path, None
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                            start_new_session=True, preexec_fn=die_with_parent)

    def exit_status(self):
        """The exit status (minus the signal number if killed), None while it runs. The process
        is left unreaped: while it is a zombie, its process group id cannot be given to another
        process, so that killpg reaches this server's group and nothing else."""
        result = os.waitid(os.P_PID, self.process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        if result is None:
            return None
        return result.si_status if result.si_code == os.CLD_EXITED else -result.si_status

    def failure(self, what):
        status = self.exit_status()
        state = f"exited with status {status}" if status is not None else "is still running"
        return StartError(f"{self.name} {what} ({state}); the end of its log {self.log_path}:\n"
                          f"{log_tail(self.log_path)}")

    def wait_for(self, ready, deadline):
        """Polls ready() until it returns a value; a server that exits or misses the deadline is an
        error naming it."""
        while True:
            value = ready()
            if value:
                return value
            if self.exit_status() is not None:
                raise self.failure("did not start")
            if time.monotonic() > deadline:
                raise self.failure("did not start in time")
            time.sleep(0.02)

    def signal(self, number):
        try:
            os.killpg(self.process.pid, number)
        except ProcessLookupError:
            pass


def read_port_file(path):
    try:
        with open(path) as file:
            return int(file.read())
    except (FileNotFoundError, ValueError):
        return None


def remove_stale(path):
    """A file of an earlier run in a reused work directory, which would be taken for this run's."""
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def install_s3rver(directory):
    """npm ci of tests/remote/s3rver into directory, once: later runs find the same lock file
    installed and skip it. A file lock keeps concurrent runs from installing over each other."""
    os.makedirs(directory, exist_ok=True)
    entry = os.path.join(directory, "node_modules", "s3rver", "bin", "s3rver.js")
    with open(os.path.join(directory, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        digest = hashlib.sha256()
        for name in ("package.json", "package-lock.json"):
            with open(os.path.join(S3RVER_PACKAGE, name), "rb") as file:
                digest.update(file.read())
        stamp = os.path.join(directory, "installed")
        if os.path.exists(entry) and os.path.exists(stamp):
            with open(stamp) as file:
                if file.read() == digest.hexdigest():
                    return entry
        for name in ("package.json", "package-lock.json"):
            shutil.copy(os.path.join(S3RVER_PACKAGE, name), directory)
        npm = shutil.which("npm")
        if npm is None:
            raise StartError("npm not found (Debian: apt-get install nodejs npm)")
        log_path = os.path.join(directory, "npm-install.log")
        with open(log_path, "wb") as log:
            try:
                result = subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=directory,
                                        stdin=subprocess.DEVNULL, stdout=log, stderr=log, timeout=NPM_INSTALL_SECONDS)
            except subprocess.TimeoutExpired:
                raise StartError(f"npm ci of s3rver did not finish in time; its log {log_path}:\n{log_tail(log_path)}")
        if result.returncode != 0 or not os.path.exists(entry):
            raise StartError(f"npm ci of s3rver failed with status {result.returncode}; its log {log_path}:\n"
                             f"{log_tail(log_path)}")
        with open(stamp, "w") as file:
            file.write(digest.hexdigest())
        return entry


def sign_s3_request(method, url, access_key, secret_key, headers=None, timestamp=None):
    """The headers that sign a request (its body unsigned) with botocore's S3SigV4Auth: the given
    headers, Host, X-Amz-Date and X-Amz-Content-SHA256, all signed, as an SDK signs them.
    timestamp (YYYYMMDDTHHMMSSZ) signs as of another time; None: now."""
    request = botocore.awsrequest.AWSRequest(method=method, url=url, headers=dict(headers or {}))
    if timestamp is None:
        timestamp = datetime.datetime.now(datetime.timezone.utc).strftime(botocore.auth.SIGV4_TIMESTAMP)
    request.context["timestamp"] = request.headers["X-Amz-Date"] = timestamp
    request.headers["X-Amz-Content-SHA256"] = botocore.auth.UNSIGNED_PAYLOAD
    auth = botocore.auth.S3SigV4Auth(botocore.credentials.Credentials(access_key, secret_key), "s3", REGION)
    string_to_sign = auth.string_to_sign(request, auth.canonical_request(request))
    request.headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={auth.scope(request)}, "
        f"SignedHeaders={auth.signed_headers(auth.headers_to_sign(request))}, "
        f"Signature={auth.signature(string_to_sign, request)}")
    return dict(request.headers.items())


class Servers:
    """The three servers over data_dir, with their files and logs under work_dir. The files
    whose path under data_dir matches a glob of s3_exclude are not uploaded to S3 (a sparse 2 GiB
    file for nginx need not be copied through the proxy into s3rver's storage)."""

    def __init__(self, data_dir, work_dir, s3rver_dir, start_seconds, s3_exclude=()):
        self.data_dir = os.path.abspath(data_dir)
        self.s3_exclude = s3_exclude
        self.work_dir = os.path.abspath(work_dir)
        self.s3rver_dir = os.path.abspath(s3rver_dir)
        self.start_seconds = start_seconds
        self.running = []

    def start(self):
        s3rver_entry = install_s3rver(self.s3rver_dir)
        deadline = time.monotonic() + self.start_seconds
        s3rver = self.start_s3rver(s3rver_entry)
        fault = self.start_python("fault server", [os.path.join(HERE, "fault_server.py"), self.data_dir])
        self.nginx = self.start_nginx(deadline)
        s3rver_port = s3rver.wait_for(lambda: self.s3rver_port(s3rver), deadline)
        s3rver.url = f"http://127.0.0.1:{s3rver_port}"
        proxy = self.start_python("s3 proxy", [
            os.path.join(HERE, "s3_proxy.py"), "--upstream-port", str(s3rver_port), "--region", REGION,
            "--key", f"{ACCESS_KEY_ID}:{SECRET_ACCESS_KEY}",
            "--key", f"{SESSION_ACCESS_KEY_ID}:{SESSION_SECRET_ACCESS_KEY}:{SESSION_TOKEN}"])
        for server in (fault, proxy):
            port = server.wait_for(lambda: read_port_file(server.port_file), deadline)
            server.url = f"http://127.0.0.1:{port}"
        self.fault, self.proxy = fault, proxy
        self.upload_to_s3()

    def start_python(self, name, command):
        slug = name.replace(" ", "_")
        port_file = os.path.join(self.work_dir, f"{slug}.port")
        remove_stale(port_file)
        server = Server(name, [PYTHON, *command, "--port-file", port_file], os.path.join(self.work_dir, f"{slug}.log"))
        server.port_file = port_file
        self.running.append(server)
        return server

    def start_s3rver(self, entry):
        node = shutil.which("node") or shutil.which("nodejs")
        if node is None:
            raise StartError("node not found (Debian: apt-get install nodejs)")
        storage = os.path.join(self.work_dir, "s3rver-storage")
        server = Server("s3rver", [node, entry, "--directory", storage, "--address", "127.0.0.1", "--port", "0",
                                   "--silent", "--no-vhost-buckets", "--configure-bucket", BUCKET],
                        os.path.join(self.work_dir, "s3rver.log"))
        self.running.append(server)
        return server

    @staticmethod
    def s3rver_port(server):
        with open(server.log_path) as log:
            for line in log:
                if line.startswith("S3rver listening on 127.0.0.1:"):
                    return int(line.rsplit(":", 1)[1])
        return None

    def start_nginx(self, deadline):
        """nginx is given its port: another process may take a free port between our probe and
        nginx's bind, and then nginx exits at once and is tried on another port."""
        work = os.path.join(self.work_dir, "nginx")
        os.makedirs(work, exist_ok=True)
        self.access_log = os.path.join(work, "access.log")
        error_log = os.path.join(work, "error.log")
        pid_file = os.path.join(work, "nginx.pid")
        for attempt in range(1, NGINX_PORT_ATTEMPTS + 1):
            for stale in (self.access_log, error_log, pid_file):
                remove_stale(stale)
            port = free_port()
            try:
                command = nginx.write_config(work, self.data_dir, port, self.access_log)
            except FileNotFoundError as error:
                raise StartError(str(error))
            server = Server("nginx", command, os.path.join(work, "output.log"))
            self.running.append(server)
            try:
                # nginx writes its pid file once its socket is bound.
                server.wait_for(lambda: os.path.exists(pid_file), deadline)
            except StartError as error:
                in_use = "Address already in use" in log_tail(error_log)
                if in_use and attempt < NGINX_PORT_ATTEMPTS and server.exit_status() is not None:
                    continue
                raise StartError(f"{error}\nThe end of its error log {error_log}:\n{log_tail(error_log)}")
            server.url = f"http://127.0.0.1:{port}"
            return server

    def upload_to_s3(self):
        """Every file of data_dir into the bucket, its key the file's path under data_dir, by
        signed PUTs through the proxy: the proxy and s3rver have then served a request each."""
        proxy_port = urllib.parse.urlsplit(self.proxy.url).port
        connection = http.client.HTTPConnection("127.0.0.1", proxy_port, timeout=60, blocksize=1 << 16)
        try:
            for directory, _, files in os.walk(self.data_dir):
                for name in sorted(files):
                    path = os.path.join(directory, name)
                    key = os.path.relpath(path, self.data_dir).replace(os.sep, "/")
                    if any(fnmatch.fnmatchcase(key, pattern) for pattern in self.s3_exclude):
                        continue
                    url = f"{self.proxy.url}/{BUCKET}/{urllib.parse.quote(key, safe='/~')}"
                    headers = sign_s3_request("PUT", url, ACCESS_KEY_ID, SECRET_ACCESS_KEY)
                    headers["Content-Length"] = str(os.path.getsize(path))
                    with open(path, "rb") as body:
                        connection.request("PUT", urllib.parse.urlsplit(url).path, body=body, headers=headers)
                        response = connection.getresponse()
                        answer = response.read()
                    if response.status != 200:
                        raise StartError(f"uploading {key} to S3 failed: {response.status} "
                                         f"{answer.decode(errors='replace')}")
        except (OSError, http.client.HTTPException) as error:
            raise StartError(f"uploading to S3 failed: {error!r}; the end of the proxy's log {self.proxy.log_path}:\n"
                             f"{log_tail(self.proxy.log_path)}")
        finally:
            connection.close()

    def environment(self):
        """What a test needs to reach the servers; see README.md ("Environment")."""
        return {
            "SAFETENSORS_REMOTE_DATA_DIR": self.data_dir,
            "SAFETENSORS_REMOTE_HTTP_URL": self.nginx.url,
            "SAFETENSORS_REMOTE_NGINX_ACCESS_LOG": self.access_log,
            "SAFETENSORS_REMOTE_FAULT_URL": self.fault.url,
            "SAFETENSORS_REMOTE_S3_BUCKET": BUCKET,
            "SAFETENSORS_REMOTE_S3_WRONG_SECRET_ACCESS_KEY": WRONG_SECRET_ACCESS_KEY,
            "SAFETENSORS_REMOTE_S3_SESSION_ACCESS_KEY_ID": SESSION_ACCESS_KEY_ID,
            "SAFETENSORS_REMOTE_S3_SESSION_SECRET_ACCESS_KEY": SESSION_SECRET_ACCESS_KEY,
            "SAFETENSORS_REMOTE_S3_SESSION_TOKEN": SESSION_TOKEN,
            "AWS_ENDPOINT_URL": self.proxy.url,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        }

    def started(self):
        """The servers that started (and so are watched while the command runs)."""
        return [server for server in self.running if server.url is not None]

    def stop(self):
        """SIGTERM to every server's process group; SIGKILL to whatever of a group is left when
        its server has exited or after STOP_SECONDS (an nginx worker can outlive its master)."""
        for server in self.running:
            server.signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        for server in self.running:
            while server.exit_status() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            if server.exit_status() is None:
                print(f"with_servers: {server.name} ignored SIGTERM for {STOP_SECONDS} s; killing it",
                      file=sys.stderr)
            server.signal(signal.SIGKILL)
            server.process.wait()
        self.running = []
