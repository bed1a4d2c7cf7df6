#!/usr/bin/env python3
"""Smart-HTTP git server for tests: git-http-backend (CGI) behind Python's
http.server, bound to 127.0.0.1 on a free port (written to --port-file).
Repositories under <root>/private/ require HTTP Basic auth with --password
(any user name: tokens are often sent as the password).
Every request is appended to --request-log as "METHOD path status"."""

import argparse
import base64
import http.server
import os
import subprocess
import sys
import threading

args = None
log_lock = threading.Lock()


def log_request_line(method, path, status):
    with log_lock:
        with open(args.request_log, "a") as f:
            f.write(f"{method} {path} {status}\n")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, fmt, *a):  # quiet
        pass

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = bytearray()
            while True:
                line = self.rfile.readline().strip()
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                body += self.rfile.read(size)
                self.rfile.readline()
            return bytes(body)
        n = int(self.headers.get("Content-Length", "0") or 0)
        return self.rfile.read(n) if n else b""

    def handle_git(self):
        path, _, query = self.path.partition("?")
        body = self.read_body() if self.command == "POST" else b""
        if path.startswith("/private/"):
            # user:password, or any user with the password (a token used as password).
            given = self.headers.get("Authorization", "")
            user, password = "", None
            if given.startswith("Basic "):
                try:
                    user, _, password = base64.b64decode(given[6:]).decode().partition(":")
                except Exception:
                    password = None
            if password != args.password:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="faasd-test"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                log_request_line(self.command, path, 401)
                return
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": args.root,
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": self.client_address[0],
            "REMOTE_USER": "",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
        }
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        proc = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True)
        out = proc.stdout
        sep = out.find(b"\r\n\r\n")
        sep_len = 4
        if sep < 0:
            sep = out.find(b"\n\n")
            sep_len = 2
        if sep < 0:
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()
            log_request_line(self.command, path, 500)
            return
        head, payload = out[:sep].decode("latin-1"), out[sep + sep_len:]
        status = 200
        headers = []
        for line in head.splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            else:
                headers.append((name.strip(), value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        log_request_line(self.command, path, status)

    do_GET = handle_git
    do_POST = handle_git


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("--root", required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--user", default="faasd")
    p.add_argument("--password", default="secret")
    p.add_argument("--request-log", required=True)
    args = p.parse_args()
    open(args.request_log, "w").close()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
