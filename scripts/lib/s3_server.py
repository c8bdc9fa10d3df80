"""moto's S3 server on 127.0.0.1 with one bucket: what scripts/s3-server runs."""

import argparse
import logging
import socket
import sys
import threading
import urllib.request

from moto.server import ThreadedMotoServer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--until-stdin-closes", action="store_true")
    args = parser.parse_args()
    # One log line per request would fill a pipe nobody reads.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False).start()
    base = f"http://127.0.0.1:{port}"
    never_proxied = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    made = never_proxied.open(urllib.request.Request(f"{base}/{args.bucket}", method="PUT"), timeout=30)
    if made.status != 200:
        sys.exit(f"s3-server: making the bucket {args.bucket} answered {made.status}")
    print(f"endpoint {base}", flush=True)
    if args.until_stdin_closes:
        sys.stdin.read()
    else:
        threading.Event().wait()


if __name__ == "__main__":
    main()
