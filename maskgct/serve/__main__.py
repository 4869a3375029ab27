"""``maskgct serve``: the HTTP API (and with ``--ui`` the web page) over one loaded model.

    maskgct serve [--checkpoint DIR] [--host 127.0.0.1] [--port 8000] [--voices DIR] [--ui] [--device auto]
        [--precision auto|float32|bfloat16]

Bad options, a checkpoint that does not load or a port that is taken: one ``error: ...`` line, exit 2.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from maskgct.cli import DEVICE_HELP, pick_device, report_error

DEFAULT_VOICES_DIR = Path("~/.cache/maskgct/voices")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="maskgct serve", description="Serve MaskGCT over HTTP.")
    parser.add_argument("--checkpoint", help="checkpoint folder or hub id (default: the embedded model)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free port)")
    parser.add_argument("--voices", default=str(DEFAULT_VOICES_DIR),
                        help=f"folder of registered voices (default {DEFAULT_VOICES_DIR})")  # fmt: skip
    parser.add_argument("--ui", action="store_true", help="also serve the web page at /")
    parser.add_argument("--precision", choices=("auto", "float32", "bfloat16"), default="auto",
                        help="auto: both modes, fast mode in bfloat16 where native; bfloat16: weights in "
                        "bfloat16, half the memory, fast mode only (default: %(default)s)")  # fmt: skip
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
    parser.add_argument("--max-queue", type=int, default=16, help="requests that may wait (default 16)")
    parser.add_argument("--max-batch", type=int, default=1,
                        help="speech requests waiting together, decoded as one padded batch "
                        "(default 1)")  # fmt: skip
    parser.add_argument("--max-body-mb", type=float, default=20.0, help="largest request body (default 20)")
    parser.add_argument("--quiet", action="store_true", help="no access log")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not 0 <= args.port <= 65535:
        return report_error(f"--port must be between 0 and 65535, not {args.port}")
    if args.max_queue < 1 or args.max_batch < 1 or not args.max_body_mb > 0:
        return report_error("--max-queue and --max-batch must be at least 1 and --max-body-mb more than 0")
    try:
        from maskgct.api import MaskGCT
        from maskgct.checkpoint import default_checkpoint
        from maskgct.serve.server import MaskGCTServer, ServeConfig

        checkpoint = args.checkpoint or default_checkpoint()
        device = pick_device(args.device)
        tts = MaskGCT.from_pretrained(checkpoint, device=device, precision=args.precision)
        config = ServeConfig(
            Path(args.voices).expanduser(),
            args.ui,
            args.max_queue,
            int(args.max_body_mb * 2**20),
            max_batch=args.max_batch,
        )
        server = MaskGCTServer((args.host, args.port), tts, config)
    except (ValueError, OSError) as err:  # CheckpointError is a ValueError; a taken port an OSError
        return report_error(err)
    server.quiet = args.quiet
    host, port = server.server_address[:2]
    page = f"; the page: http://{host}:{port}/" if args.ui else ""
    print(
        f"serving {checkpoint} on {device} at http://{host}:{port}/v1{page} (Ctrl-C stops)", file=sys.stderr
    )
    # A service manager stops with SIGTERM: finish the queued requests as for Ctrl-C, then exit 0.
    signal.signal(signal.SIGTERM, interrupt)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    print("stopped", file=sys.stderr)
    return 0


def interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
