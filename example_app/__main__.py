"""``python -m example_app``: serve the example on http://127.0.0.1:8000 (``--port``/``--host`` to change).

``--with-announced`` also runs ``example_app.announced`` (on ``--announced-port``), which announces itself to it.
"""

from __future__ import annotations

import argparse

import uvicorn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--with-announced", action="store_true", help="also run the app that announces itself here")
    parser.add_argument("--announced-port", type=int, default=8001)
    args = parser.parse_args()
    if args.with_announced:
        from example_app.demo import run_both

        raise SystemExit(run_both(args.host, args.port, args.announced_port))
    uvicorn.run("example_app.app:app", host=args.host, port=args.port)


if __name__ == "__main__":
    main()
