"""``python -m example_app``: serve the example on http://127.0.0.1:8000 (``--port``/``--host`` to change)."""

from __future__ import annotations

import argparse

import uvicorn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    uvicorn.run("example_app.app:app", host=args.host, port=args.port)


if __name__ == "__main__":
    main()
