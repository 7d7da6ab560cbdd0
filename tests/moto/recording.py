"""moto's own S3 server application (what `python3 -m moto.server` runs) over TLS, logging the
server-side-encryption headers of every request it receives, one JSON object a line.

moto keeps SSE-KMS on its objects (head_object shows it), but it ignores SSE-C: it neither
stores nor checks a customer key. So the SSE-C tests read what the client sent from this log,
while moto still does all the S3 work. TLS because S3 (and every S3-compatible server) refuses
SSE-C over plain HTTP: the key travels in a header.

Usage: recording.py PORT CERT KEY LOG
"""
import json
import os
import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

port, cert, key, log = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
os.environ.setdefault("MOTO_PORT", str(port))
lock = threading.Lock()
app = DomainDispatcherApplication(create_backend_app)


def recording(environ, start_response):
    sse = {
        name[5:].lower().replace("_", "-"): value
        for name, value in environ.items()
        if name.startswith("HTTP_X_AMZ_SERVER_SIDE_ENCRYPTION")
    }
    entry = {
        "method": environ["REQUEST_METHOD"],
        "path": environ.get("PATH_INFO", ""),
        "query": environ.get("QUERY_STRING", ""),
        "sse": sse,
    }
    with lock, open(log, "a") as f:
        f.write(json.dumps(entry) + "\n")
    return app(environ, start_response)


run_simple("127.0.0.1", port, recording, threaded=True, ssl_context=(cert, key))
