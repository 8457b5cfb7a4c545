#!/usr/bin/python3
"""Starts nginx, s3rver behind the signature-checking proxy, and the fault server on 127.0.0.1,
all serving DATA_DIR (uploaded into the S3 bucket), runs COMMAND with the environment variables
that name them (README.md, "Environment"), stops every server whatever happens, and exits with
COMMAND's status (128+N if signal N killed it); 1 if a server fails to start or dies while
COMMAND runs (COMMAND is then stopped), 128+N if the runner is stopped by signal N, 127 or 126
if COMMAND cannot be run, 2 for a usage error."""

import argparse
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import servers

COMMAND_GRACE_SECONDS = 1
COMMAND_TERM_SECONDS = 5
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# Variables of the caller that would send the command elsewhere than to these servers: its own
# AWS profile, keys, token or endpoint (AWS_*), or an HTTP proxy that libcurl and curl would use.
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


class Stopped(Exception):
    def __init__(self, number):
        super().__init__(signal.Signals(number).name)
        self.number = number


def raise_stopped(number, frame):
    raise Stopped(number)


def parse_arguments():
    argv = sys.argv[1:]
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        print(f"usage: {sys.argv[0]} [options] DATA_DIR -- COMMAND [ARG...]\n\n{__doc__}", file=sys.stderr)
        sys.exit(2)
    split = argv.index("--")
    parser = argparse.ArgumentParser(usage="%(prog)s [options] DATA_DIR -- COMMAND [ARG...]", description=__doc__)
    parser.add_argument("data_dir", help="directory of test files that every server serves")
    parser.add_argument("--s3rver-dir", default=os.path.join(servers.HERE, "..", "..", "build", "remote-s3rver"),
                        help="where s3rver is installed by npm, once (default: build/remote-s3rver)")
    parser.add_argument("--work-dir", help="directory for the servers' files and logs, kept afterwards "
                        "(default: a temporary one, removed)")
    parser.add_argument("--s3-exclude", action="append", default=[], metavar="GLOB",
                        help="files (their path under DATA_DIR) not to upload to S3; may be repeated")
    parser.add_argument("--start-timeout", type=float, default=30, metavar="SECONDS",
                        help="how long the servers may take to start, npm install aside (default 30)")
    arguments = parser.parse_args(argv[:split])
    arguments.command = argv[split + 1:]
    if not os.path.isdir(arguments.data_dir):
        parser.error(f"{arguments.data_dir} is not a directory")
    return arguments


def command_environment(started):
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith("AWS_") and name not in PROXY_VARIABLES}
    environment.update(started.environment())
    return environment


def watch(command, started):
    """Waits for the command to end; a server that exits before it stops it."""
    command_fd = os.pidfd_open(command.pid)
    server_fds = {os.pidfd_open(server.process.pid): server for server in started.started()}
    try:
        while True:
            ready, _, _ = select.select([command_fd, *server_fds], [], [])
            if command_fd in ready:
                status = command.wait()
                # Killed by signal N: 128+N, as a shell reports it, not Popen's -N.
                return 128 - status if status < 0 else status
            server = server_fds[ready[0]]
            print(f"with_servers: {server.name} exited with status {server.exit_status()} while the command ran; "
                  f"stopping the command. The end of its log {server.log_path}:\n{servers.log_tail(server.log_path)}",
                  file=sys.stderr)
            end(command)
            return 1
    finally:
        for fd in (command_fd, *server_fds):
            os.close(fd)


def end(command):
    """A second to end by itself (a Ctrl-C at the terminal reaches it as well as us), then
    SIGTERM, then SIGKILL."""
    for number, seconds in ((None, COMMAND_GRACE_SECONDS), (signal.SIGTERM, COMMAND_TERM_SECONDS),
                            (signal.SIGKILL, None)):
        if number is not None:
            command.send_signal(number)
        try:
            command.wait(seconds)
            return
        except subprocess.TimeoutExpired:
            pass


def main():
    arguments = parse_arguments()
    for number in STOP_SIGNALS:
        signal.signal(number, raise_stopped)
    work_dir = arguments.work_dir or tempfile.mkdtemp(prefix="safetensors-remote-")
    os.makedirs(work_dir, exist_ok=True)
    started = servers.Servers(arguments.data_dir, work_dir, arguments.s3rver_dir, arguments.start_timeout,
                              arguments.s3_exclude)
    command = None
    status = 1
    try:
        began = time.monotonic()
        started.start()
        print(f"with_servers: nginx {started.nginx.url}, S3 {started.proxy.url} (bucket {servers.BUCKET}), "
              f"fault server {started.fault.url}; started in {time.monotonic() - began:.1f} s", file=sys.stderr)
        try:
            command = subprocess.Popen(arguments.command, env=command_environment(started))
        except OSError as error:
            print(f"with_servers: cannot run {arguments.command[0]}: {error}", file=sys.stderr)
            status = 127 if isinstance(error, FileNotFoundError) else 126
        else:
            status = watch(command, started)
    except servers.StartError as error:
        print(f"with_servers: {error}", file=sys.stderr)
    except Stopped as stop:
        print(f"with_servers: stopped by {stop}", file=sys.stderr)
        status = 128 + stop.number
    finally:
        for number in STOP_SIGNALS:
            signal.signal(number, signal.SIG_IGN)
        if command is not None and command.returncode is None:
            end(command)
        started.stop()
        if arguments.work_dir is None:
            shutil.rmtree(work_dir, ignore_errors=True)
    sys.exit(status)


if __name__ == "__main__":
    main()
