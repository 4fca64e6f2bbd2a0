"""`syrip-gen review DATASET`: a local web page to accept/reject renders with the keyboard."""
from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", help="dataset directory in SyRIP layout")
    p.add_argument("--port", type=int, default=0, help="port to listen on (default %(default)s: a free one)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s: this machine only)")
    p.add_argument("--no-browser", action="store_true", help="print the URL without opening a browser")


def run(args: argparse.Namespace) -> int:
    import webbrowser

    from syrip_gen.review.server import make_server, url_of

    server = make_server(args.dataset, host=args.host, port=args.port)
    url = url_of(server)
    print(f"review page: {url}  (decisions saved to {server.state.decisions_file}; Ctrl-C to stop)", flush=True)
    if not args.no_browser:
        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped; every decision is already saved")
    finally:
        server.server_close()
    return 0
