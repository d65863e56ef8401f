#!/usr/bin/env python3
"""echo_key_server.py PORT - a hostile server for t_secrets.sh: every chat completion is
answered 401 with the caller's bearer token and X-Api-Key header echoed in the body (as some
real servers do), and the token echoed in a response header too."""
import http.server
import json
import sys


class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"data":[]}')

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(n)
        auth = self.headers.get("Authorization", "")
        tok = auth.split(" ", 1)[1] if " " in auth else auth
        xkey = self.headers.get("X-Api-Key", "")
        body = json.dumps({"error": {"message": "Incorrect API key provided: %s (x-api-key %s)"
                                     % (tok, xkey), "type": "invalid_request_error"}}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Echo", tok)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
