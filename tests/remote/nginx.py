#!/usr/bin/python3
"""Runs nginx in the foreground on 127.0.0.1, serving a directory with byte ranges and keep-alive,
/redirect/<path> answering 302 to /<path>, and an access log of one JSON object per request.
Everything nginx writes (configuration, pid file, logs, temporary files) stays in a directory of
its own, so it runs as root or not, beside a system nginx or none."""

import argparse
import os
import shutil
import tempfile

# One JSON object a line, so that a test counts the requests and bytes a command cost. The
# connection number and its request count show whether connections were kept alive. nginx writes
# a line when it has handed the last byte of a response to the kernel: a client can read that
# byte an instant before the line exists, so a test waits (briefly) for the lines it expects.
ACCESS_LOG_FORMAT = (
    '{"method":"$request_method","uri":"$request_uri","range":"$http_range",'
    '"if_match":"$http_if_match","authorization":"$http_authorization","status":$status,"body_bytes_sent":$body_bytes_sent,'
    '"bytes_sent":$bytes_sent,"connection":$connection,"connection_requests":$connection_requests}'
)

CONFIG = """\
{user}
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/error.log info;

events {{
    worker_connections 1024;
}}

http {{
    log_format requests escape=json '{log_format}';
    access_log {access_log} requests;

    client_body_temp_path {work}/client_body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;

    types {{
        application/json json;
        text/plain txt;
    }}
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    server_tokens off;
    # A loader may make thousands of range requests on one connection; the default limit (1000)
    # would close it under them, which no CDN does.
    keepalive_requests 1000000;
    keepalive_timeout 75s;

    server {{
        listen 127.0.0.1:{port};
        root {root};

        location / {{
        }}

        # The target is cut from the request line as sent, escapes and all: $uri is decoded,
        # and would put a raw space or "?" of a file name into Location.
        location /redirect/ {{
            if ($request_uri ~ ^/redirect(/.*)$) {{
                return 302 $1;
            }}
        }}
    }}
}}
"""


def find_nginx():
    """nginx lives in /usr/sbin, which is not on PATH for users other than root on Debian."""
    path = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if path is None:
        raise FileNotFoundError("nginx not found (Debian: apt-get install nginx-light)")
    return path


def write_config(work, root, port, access_log):
    """Writes work/nginx.conf; returns the command that runs nginx with it."""
    for temporary in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        os.makedirs(os.path.join(work, temporary), exist_ok=True)
    # As root, nginx would run its worker as "nobody", which may not read the files served or
    # this directory; a test server has nothing to protect from itself.
    user = "user root root;" if os.geteuid() == 0 else ""
    config_path = os.path.join(work, "nginx.conf")
    with open(config_path, "w") as file:
        file.write(CONFIG.format(user=user, work=work, root=os.path.abspath(root), port=port,
                                 access_log=access_log, log_format=ACCESS_LOG_FORMAT))
    # -e: the error log from the very start; before reading the configuration, nginx would try
    # the system's /var/log/nginx/error.log.
    return [find_nginx(), "-p", work, "-c", config_path, "-e", os.path.join(work, "error.log")]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root", help="directory whose files are served")
    parser.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 (default 8080)")
    parser.add_argument("--work", help="directory for the configuration and logs (default: a new one in /tmp)")
    arguments = parser.parse_args()
    work = os.path.abspath(arguments.work or tempfile.mkdtemp(prefix="safetensors-nginx-"))
    access_log = os.path.join(work, "access.log")
    command = write_config(work, arguments.root, arguments.port, access_log)
    print(f"serving {os.path.abspath(arguments.root)} on http://127.0.0.1:{arguments.port}; "
          f"access log {access_log}; Ctrl-C stops", flush=True)
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
