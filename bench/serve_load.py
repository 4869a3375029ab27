"""Load test of ``maskgct serve``: N concurrent clients on the loopback address, bounded in count and time.

    .venv/bin/python bench/serve_load.py              # the tiny fixture model, 8 clients, 48 requests
    .venv/bin/python bench/serve_load.py --checkpoint checkpoints/default --prompt ref.wav --prompt-text "..."
    .venv/bin/python bench/serve_load.py --max-batch 8 --mode reference   # batched vs --max-batch 1

The server runs in this process on 127.0.0.1 with a free port, over its own temporary voices folder. Each
request asks for one of ``--requests / 2`` (seed, text) pairs, so every pair is asked twice under load;
afterwards each pair is asked once more alone. Every answer must equal its pair's lone answer byte for
byte (a seeded request is deterministic, so a swapped or corrupted answer shows), and different pairs
must give different audio. Prints throughput, p50/p95 latency and the check; exits 1 if it fails.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
# As in tests/conftest.py: ../shared beside the repository, or MASKGCT_FIXTURES.
FIXTURES = Path(os.environ.get("MASKGCT_FIXTURES", REPO.parent / "shared" / "fixtures" / "amphion"))
TEXTS = (
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "A large size in stockings is hard to sell.",
    "Glue the sheet to the dark blue background.",
)


def request(address, method: str, path: str, body: bytes, content_type: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(*address, timeout=600)
    try:
        connection.request(method, path, body=body, headers={"Content-Type": content_type})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def register(address, prompt: Path, transcript: str) -> str:
    boundary = uuid.uuid4().hex
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"{extra}\r\n\r\n'.encode()
        + value
        + b"\r\n"
        for name, extra, value in (
            ("file", '; filename="prompt.wav"', prompt.read_bytes()),
            ("transcript", "", transcript.encode()),
        )
    )
    status, data = request(
        address,
        "POST",
        "/v1/voices",
        body + f"--{boundary}--\r\n".encode(),
        f"multipart/form-data; boundary={boundary}",
    )
    if status != 201:
        raise SystemExit(f"error: registering the prompt failed ({status}): {data.decode(errors='replace')}")
    return json.loads(data)["id"]


def speak(address, voice: str, key: tuple[int, str], steps: int, mode: str) -> tuple[int, bytes, float]:
    body = json.dumps({"input": key[1], "voice": voice, "seed": key[0], "steps": steps, "mode": mode})
    started = time.perf_counter()
    status, data = request(address, "POST", "/v1/audio/speech", body.encode(), "application/json")
    return status, data, time.perf_counter() - started


def tiny_checkpoint(root: Path) -> Path:
    """The tiny fixture model, converted as the tests do."""
    sys.path.insert(0, str(REPO / "tests"))
    from pipeline_support import convert_tiny

    return convert_tiny(FIXTURES, root)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--requests", type=int, default=48, help="requests in all (default 48; at most 1000)")
    parser.add_argument(
        "--max-seconds", type=float, default=300, help="stop sending after this (default 300)"
    )
    parser.add_argument("--checkpoint", help="checkpoint folder (default: the tiny fixture model)")
    parser.add_argument("--prompt", type=Path, default=FIXTURES / "prompt.wav")
    parser.add_argument("--prompt-text", default="The birch canoe slid on the smooth planks.")
    parser.add_argument("--steps", type=int, default=4, help="T2S steps per request (default 4)")
    parser.add_argument("--mode", choices=("reference", "fast"), default="fast", help="(default fast)")
    parser.add_argument("--max-batch", type=int, default=1,
                        help="the server's --max-batch (default 1); batched answers equal the lone ones "
                        "byte for byte in reference mode, up to float differences in fast mode")  # fmt: skip
    args = parser.parse_args()
    if not (1 <= args.clients <= 64 and 2 <= args.requests <= 1000 and args.max_seconds > 0):
        parser.error("--clients must be 1-64, --requests 2-1000 and --max-seconds more than 0")

    from maskgct import MaskGCT
    from maskgct.serve.server import MaskGCTServer, ServeConfig

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = args.checkpoint or tiny_checkpoint(Path(tmp))
        tts = MaskGCT.from_pretrained(checkpoint)
        server = MaskGCTServer(
            ("127.0.0.1", 0), tts, ServeConfig(Path(tmp) / "voices", max_queue=64, max_batch=args.max_batch)
        )
        server.quiet = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        address = server.server_address[:2]
        try:
            voice = register(address, args.prompt, args.prompt_text)
            pairs = [(seed, TEXTS[seed % len(TEXTS)]) for seed in range(args.requests // 2)]
            keys = [pairs[i % len(pairs)] for i in range(args.requests)]
            deadline = time.perf_counter() + args.max_seconds

            def one(key):
                if time.perf_counter() > deadline:
                    return None
                return speak(address, voice, key, args.steps, args.mode)

            started = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as pool:
                answers = list(pool.map(one, keys))
            wall = time.perf_counter() - started
            alone = {key: speak(address, voice, key, args.steps, args.mode)[1] for key in pairs}
        finally:
            server.shutdown()
            server.server_close()

    done = [(key, a) for key, a in zip(keys, answers, strict=True) if a is not None]
    ok = [(key, a) for key, a in done if a[0] == 200]
    wrong = sum(a[1] != alone[key] for key, a in ok)
    distinct = len({hashlib.sha256(audio).digest() for audio in alone.values()})
    latency = np.array([a[2] for _, a in ok]) if ok else np.zeros(1)
    print(
        f"{len(done)} of {args.requests} requests sent in {wall:.1f} s by {args.clients} clients "
        f"({len(ok)} answered 200, {len(done) - len(ok)} refused): {len(ok) / wall:.2f} requests/s, "
        f"latency p50 {np.percentile(latency, 50):.2f} s, p95 {np.percentile(latency, 95):.2f} s"
    )
    print(
        f"answers equal to their pair's lone answer: {len(ok) - wrong} of {len(ok)}; "
        f"distinct audio for {distinct} of {len(pairs)} (seed, text) pairs"
    )
    return 0 if ok and wrong == 0 and len(ok) == len(done) and distinct == len(pairs) else 1


if __name__ == "__main__":
    sys.exit(main())
