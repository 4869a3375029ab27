"""``maskgct serve``: the HTTP API on the tiny fixture checkpoint, on 127.0.0.1 with a free port.

The audio the server returns is checked against ``python -m maskgct.infer`` run with the same prompt, text
and seed; voices are checked to survive a restart; every kind of bad request gets a 4xx JSON answer and the
server keeps serving.
"""

import http.client
import io
import json
import signal
import subprocess
import sys
import threading
import time
import uuid

import numpy as np
import pytest
import soundfile as sf
from pipeline_support import PROMPT_TEXT, write_tone

from maskgct.infer import main as infer_main
from maskgct.serve.__main__ import main as serve_main
from maskgct.serve.server import MaskGCTServer, ServeConfig
from maskgct.serve.worker import QueueFull, Worker

TEXT = "Rice is often served in round bowls."
FAST = {"duration": 1.5, "seed": 7, "steps": 2, "mode": "fast"}


@pytest.fixture(scope="module")
def checkpoint(tiny_checkpoint):
    return tiny_checkpoint


@pytest.fixture(scope="module")
def tts(checkpoint):
    from maskgct import MaskGCT

    return MaskGCT.from_pretrained(checkpoint)


def start(tts, voices_dir, **options):
    server = MaskGCTServer(("127.0.0.1", 0), tts, ServeConfig(voices_dir, **options))
    server.quiet = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def server(tts, tmp_path):
    server = start(tts, tmp_path / "voices", ui=True, max_body_bytes=2**20)
    yield server
    server.shutdown()
    server.server_close()


def call(server, method, path, body=b"", headers=None):
    """One request on a fresh connection → (status, content type, body bytes)."""
    connection = http.client.HTTPConnection(*server.server_address[:2], timeout=60)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, response.getheader("Content-Type"), data


def post_json(server, path, data):
    body = data if isinstance(data, bytes) else json.dumps(data).encode()
    return call(server, "POST", path, body, {"Content-Type": "application/json"})


def multipart(fields: dict) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = b""
    for name, value in fields.items():
        filename = '; filename="prompt.wav"' if name == "file" else ""
        value = value if isinstance(value, bytes) else value.encode()
        body += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"{filename}\r\n\r\n'.encode()
        body += value + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def register(server, **fields):
    body, content_type = multipart(fields)
    return call(server, "POST", "/v1/voices", body, {"Content-Type": content_type})


def test_speech_equals_the_command_line_and_voices_survive_a_restart(
    server, tts, fixtures, checkpoint, tmp_path
):
    status, _, data = register(server, file=(fixtures / "prompt.wav").read_bytes(), transcript=PROMPT_TEXT)
    assert status == 201, data
    voice = json.loads(data)
    assert voice["transcript"] == PROMPT_TEXT and voice["seconds"] == 2.0
    status, content_type, wav = post_json(
        server, "/v1/audio/speech", {"input": TEXT, "voice": voice["id"], **FAST}
    )
    assert status == 200 and content_type == "audio/wav", wav
    audio, rate = sf.read(io.BytesIO(wav), dtype="int16")
    # 1.5 s → 75 semantic frames; S2A gives 99 + 75 - 100 = 74 frames of 480 samples (as test_infer).
    assert rate == 24000 and len(audio) == 74 * 480 and np.abs(audio).max() > 0
    out = tmp_path / "cli.wav"
    argv = ["--checkpoint", str(checkpoint), "--prompt", str(fixtures / "prompt.wav"),
            "--prompt-text", PROMPT_TEXT, "--text", TEXT, "--out", str(out), "--duration", "1.5",
            "--seed", "7", "--steps", "2", "--mode", "fast", "--quiet"]  # fmt: skip
    assert infer_main(argv) == 0
    expected, _ = sf.read(out, dtype="int16")
    np.testing.assert_array_equal(audio, expected)
    # flac and raw pcm carry the same samples.
    for fmt in ("flac", "pcm"):
        status, _, data = post_json(
            server, "/v1/audio/speech", {"input": TEXT, "voice": voice["id"], "response_format": fmt, **FAST}
        )
        got = sf.read(io.BytesIO(data), dtype="int16")[0] if fmt == "flac" else np.frombuffer(data, "<i2")
        assert status == 200 and np.abs(got.astype(int) - expected).max() <= 1, fmt
    # The same recording and transcript give the same id; the list shows one voice.
    assert (
        json.loads(register(server, file=(fixtures / "prompt.wav").read_bytes(), transcript=PROMPT_TEXT)[2])
        == voice
    )
    assert [v["id"] for v in json.loads(call(server, "GET", "/v1/voices")[2])["data"]] == [voice["id"]]
    # A new server over the same folder knows the voice (read from disk, not encoded again) and says the same.
    again = start(tts, server.config.voices_dir)
    try:
        health = json.loads(call(again, "GET", "/health")[2])
        assert health["status"] == "ok" and health["queue"] == 0 and health["voices"] == 1
        status, _, wav_again = post_json(
            again, "/v1/audio/speech", {"input": TEXT, "voice": voice["id"], **FAST}
        )
        assert status == 200 and wav_again == wav
    finally:
        again.shutdown()
        again.server_close()
    # A named voice; the page and its script are served with --ui.
    status, _, data = register(
        server, file=(fixtures / "prompt.wav").read_bytes(), transcript=PROMPT_TEXT, name="joe"
    )
    assert status == 201 and json.loads(data)["id"] == "joe"
    status, content_type, page = call(server, "GET", "/")
    assert status == 200 and content_type.startswith("text/html") and b"/static/app.js" in page
    assert call(server, "GET", "/static/app.js")[0] == 200
    status, content_type, png = call(server, "POST", "/v1/audio/spectrogram", wav)
    assert status == 200 and content_type == "image/png" and png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert height == 256 and width == 74 * 480 // 256 + 1  # one column per 256-sample hop


def test_a_voice_registered_without_transcript_is_transcribed_and_speaks(
    server, fixtures, checkpoint, tmp_path
):
    status, _, data = register(server, file=(fixtures / "prompt.wav").read_bytes())
    assert status == 201, data
    voice = json.loads(data)
    heard = voice["transcript"]  # whisper tiny.en's, said in the notes
    assert heard and voice["notes"] == [f"no prompt text given: whisper tiny.en heard {heard!r} "
                                        "(a transcript you give is better)"]  # fmt: skip
    status, _, wav = post_json(server, "/v1/audio/speech", {"input": TEXT, "voice": voice["id"], **FAST})
    assert status == 200, wav
    # The same as the command line without --prompt-text.
    out = tmp_path / "cli.wav"
    argv = ["--checkpoint", str(checkpoint), "--prompt", str(fixtures / "prompt.wav"), "--text", TEXT,
            "--out", str(out), "--duration", "1.5", "--seed", "7", "--steps", "2", "--mode", "fast",
            "--quiet"]  # fmt: skip
    assert infer_main(argv) == 0
    np.testing.assert_array_equal(sf.read(io.BytesIO(wav), dtype="int16")[0], sf.read(out, dtype="int16")[0])


def test_a_long_voice_is_trimmed_and_keeps_only_what_was_encoded(server, fixtures):
    wav, rate = sf.read(fixtures / "prompt.wav", dtype="float32")
    long = np.concatenate([np.concatenate([wav, np.zeros(rate // 2, np.float32)])] * 7)  # 17.5 s
    buffer = io.BytesIO()
    sf.write(buffer, long, rate, format="WAV")
    status, _, data = register(server, file=buffer.getvalue())
    assert status == 201, data
    voice = json.loads(data)
    assert (
        voice["notes"][0]
        == f"the prompt is 17.5 s, longer than 15 s: trimmed at a pause to {voice['seconds']:.1f} s"
    )
    assert 7.5 <= voice["seconds"] <= 15 and voice["notes"][1].startswith("no prompt text given: whisper")
    stored = sf.info(server.config.voices_dir / voice["id"] / "prompt.wav")
    assert abs(stored.duration - voice["seconds"]) < 0.02 and stored.samplerate == rate
    status, _, wav = post_json(server, "/v1/audio/speech", {"input": TEXT, "voice": voice["id"], **FAST})
    assert status == 200, wav


def test_bad_requests_get_a_4xx_json_error_and_the_server_goes_on(server, fixtures, tmp_path):
    voice = json.loads(
        register(server, file=(fixtures / "prompt.wav").read_bytes(), transcript=PROMPT_TEXT)[2]
    )["id"]
    good = {"input": "Hello there.", "voice": voice, **FAST}
    cases = [
        (b"{not json", 400, "malformed JSON"),
        (b"[1, 2]", 400, "must be a JSON object"),
        (b'{"input": "Hi.", "voice": "%s", "speed": NaN}' % voice.encode(), 400, "NaN is not a JSON number"),
        (b"\xff\xfe", 400, "not UTF-8"),
        ({**good, "input": 5}, 400, "input must be a string, not a number"),
        ({**good, "input": "   "}, 400, "the text to speak is empty"),
        ({**good, "input": "x" * 5000}, 400, "at most 4096"),
        ({k: v for k, v in good.items() if k != "voice"}, 400, "voice must be a string, not missing"),
        ({**good, "voice": "nobody"}, 404, "unknown voice 'nobody'"),
        ({**good, "voice": "../../etc"}, 404, "unknown voice"),
        ({**good, "speed": "fast"}, 400, "speed must be a number, not a string"),
        ({**good, "speed": 100}, 400, "speed must be between 0.25 and 4"),
        ({**good, "duration": 1e9}, 400, "duration must be between"),
        ({**good, "duration": -1}, 400, "duration must be between"),
        ({**good, "seed": 1.5}, 400, "seed must be an integer"),
        ({**good, "steps": 0}, 400, "steps must be between 1 and 200"),
        ({**good, "steps": True}, 400, "steps must be an integer, not true/false"),
        ({**good, "mode": "turbo"}, 400, "mode must be one of reference, fast"),
        ({**good, "response_format": "mp3"}, 400, "response_format must be one of wav, flac, pcm"),
        ({**good, "input": "..."}, 400, "nothing pronounceable"),  # the model's own check, passed on
        ({**good, "duration": 100, "input": "Hi."}, 400, "cannot be split"),
    ]
    for body, status, message in cases:
        got, content_type, data = post_json(server, "/v1/audio/speech", body)
        error = json.loads(data)["error"]
        assert (got, content_type) == (status, "application/json") and message in error["message"], (
            body,
            error,
        )
    param = json.loads(post_json(server, "/v1/audio/speech", {**good, "speed": 9})[2])["error"]["param"]
    assert param == "speed"
    # Bodies over the limit are refused unread; missing lengths, methods and paths are named.
    # Only the headers are sent: the answer comes from Content-Length alone (sending the body would race
    # the server closing the connection, a broken pipe on the client).
    connection = http.client.HTTPConnection(*server.server_address[:2], timeout=60)
    connection.putrequest("POST", "/v1/audio/speech")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(2**20 + 1))
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413 and "at most 1048576" in json.loads(response.read())["error"]["message"]
    connection.close()
    assert call(server, "GET", "/v1/audio/speech")[0] == 405
    assert call(server, "GET", "/v2/nothing")[0] == 404
    connection = http.client.HTTPConnection(*server.server_address[:2], timeout=60)
    connection.putrequest("POST", "/v1/audio/speech")
    connection.endheaders()
    assert connection.getresponse().status == 411
    # Voices: not multipart, no file, not audio, a silent or too short prompt, a bad name.
    voice_cases = [
        ({"transcript": PROMPT_TEXT}, 400, "the prompt recording is missing"),
        ({"file": b"RIFF....WAVEfmt not audio"}, 400, "not a readable audio file"),
        (
            {"file": write_tone(tmp_path / "s.wav", 2, amplitude=0).read_bytes(), "transcript": "Hi."},
            400,
            "is silent",
        ),
        ({"file": write_tone(tmp_path / "t.wav", 0.4).read_bytes(), "transcript": "Hi."}, 400, "too short"),
        ({"file": write_tone(tmp_path / "n.wav", 2).read_bytes()}, 400, "whisper tiny.en heard no words"),
        (
            {"file": (fixtures / "prompt.wav").read_bytes(), "transcript": "Hi.", "name": "../x"},
            400,
            "voice name",
        ),
    ]
    for fields, status, message in voice_cases:
        got, _, data = register(server, **fields)
        assert got == status and message in json.loads(data)["error"]["message"], (fields.keys(), data)
    got, _, data = call(server, "POST", "/v1/voices", b"{}", {"Content-Type": "application/json"})
    assert got == 415 and "multipart/form-data" in json.loads(data)["error"]["message"]
    # After all that, the server still answers and still speaks.
    assert call(server, "GET", "/health")[0] == 200
    assert post_json(server, "/v1/audio/speech", good)[0] == 200
    assert sorted(p.name for p in server.config.voices_dir.iterdir()) == [voice]  # no half-written voice


def test_worker_bounds_its_queue_and_survives_failing_jobs():
    worker = Worker(max_queue=1)
    release = threading.Event()
    running = worker.submit(release.wait)  # occupies the thread
    while not running.running():
        pass
    waiting = worker.submit(lambda: 42)  # fills the queue
    with pytest.raises(QueueFull, match="1 requests are already waiting"):
        worker.submit(lambda: 0)
    release.set()
    assert waiting.result(timeout=10) == 42
    failing = worker.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        failing.result(timeout=10)
    assert worker.submit(lambda: "still here").result(timeout=10) == "still here"
    worker.close()


def test_worker_batches_the_batchable_jobs_waiting_behind_each_other():
    batches = []
    worker = Worker(max_queue=8, max_batch=3, run_batch=lambda items: batches.append(list(items)) or items)
    release = threading.Event()
    running = worker.submit(release.wait)  # occupies the thread while the others queue up
    while not running.running():
        pass
    futures = [worker.submit_batchable(1), worker.submit(lambda: "plain"), worker.submit_batchable(2)]
    futures += [worker.submit_batchable(n) for n in (3, 4)]
    release.set()
    assert [f.result(timeout=10) for f in futures] == [1, "plain", 2, 3, 4]
    # The first batch takes 1, 2 and 3 past the plain job; the plain job runs next; then 4 alone.
    assert batches == [[1, 2, 3], [4]]
    worker.close()


def test_speech_requests_waiting_together_are_one_batch_equal_to_each_alone(tts, fixtures, tmp_path):
    server = start(tts, tmp_path / "voices", max_batch=4)
    try:
        status, _, data = register(
            server, file=(fixtures / "prompt.wav").read_bytes(), transcript=PROMPT_TEXT
        )
        voice = json.loads(data)["id"]
        bodies = [
            {"input": text, "voice": voice, "seed": seed, "steps": 2, "mode": "reference", **extra}
            for text, seed, extra in (("Hello there.", 1, {}), ("Good bye, my friend.", 2, {"duration": 1.2}),
                                      ("Yes.", 3, {"voice": "nobody"}), ("One more.", 4, {}))
        ]  # fmt: skip
        sizes = []
        speak = server.worker.run_batch
        server.worker.run_batch = lambda requests: sizes.append(len(requests)) or speak(requests)
        release = threading.Event()
        blocker = server.worker.submit(release.wait)
        while not blocker.running():
            pass
        answers = [None] * len(bodies)

        def send(i):
            answers[i] = post_json(server, "/v1/audio/speech", bodies[i])

        threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
        for thread in threads:
            thread.start()
        while server.worker.waiting < len(bodies):
            pass
        release.set()
        for thread in threads:
            thread.join(timeout=120)
        # One batch of four; the request for an unknown voice fails alone (404), the others speak.
        assert sizes[0] == 4
        assert [a[0] for a in answers] == [200, 200, 404, 200]
        for body, answer in zip(bodies, answers, strict=True):
            if answer[0] == 200:
                assert post_json(server, "/v1/audio/speech", body)[2] == answer[2]  # alone, later
    finally:
        server.shutdown()
        server.server_close()


def test_serve_command_reports_bad_options_in_one_line(tmp_path, capsys, checkpoint):
    for argv, message in (
        (["--port", "70000"], "--port must be between 0 and 65535"),
        (["--checkpoint", str(tmp_path)], "not a maskgct checkpoint folder"),
        (["--checkpoint", str(checkpoint), "--device", "tpu:9"], "unknown device"),
        (["--max-queue", "0"], "--max-queue and --max-batch must be at least 1"),
        (["--max-batch", "0"], "--max-queue and --max-batch must be at least 1"),
    ):
        assert serve_main([*argv, "--voices", str(tmp_path / "v")]) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1, err


def test_voice_conversion_equals_the_command_line(server, fixtures, checkpoint, tmp_path):
    from maskgct.vc_cli import main as vc_main

    voice = json.loads(
        register(server, file=(fixtures / "prompt.wav").read_bytes(), transcript=PROMPT_TEXT)[2]
    )
    assert "convert" in json.loads(call(server, "GET", "/health")[2])["features"]
    source = (fixtures / "prompt.wav").read_bytes()
    out = tmp_path / "vc.wav"
    argv = ["--checkpoint", str(checkpoint), "--source", str(fixtures / "prompt.wav"),
            "--reference", str(fixtures / "prompt.wav"), "--seed", "3", "--mode", "fast",
            "--out", str(out), "--quiet"]  # fmt: skip
    assert vc_main(argv) == 0
    expected, _ = sf.read(out, dtype="int16")
    assert abs(len(expected) - 2 * 24000) <= 1  # the source's 2 s (resampled from 22.05 kHz)
    # The reference as a registered voice (its stored recording) or as an uploaded file: the same answer.
    for fields in ({"voice": voice["id"]}, {"reference": source}):
        body, content_type = multipart({"file": source, **fields, "seed": "3", "mode": "fast"})
        status, kind, wav = call(server, "POST", "/v1/audio/convert", body, {"Content-Type": content_type})
        assert (status, kind) == (200, "audio/wav"), wav
        np.testing.assert_array_equal(sf.read(io.BytesIO(wav), dtype="int16")[0], expected)
    for fields, status, message in (
        ({"file": source}, 400, "give either voice"),
        ({"file": source, "voice": voice["id"], "reference": source}, 400, "give either voice"),
        ({"voice": voice["id"]}, 400, "the source recording is missing"),
        ({"file": source, "voice": "nobody"}, 404, "unknown voice"),
        ({"file": source, "voice": voice["id"], "seed": "-1"}, 400, "seed must be a non-negative integer"),
        ({"file": source, "voice": voice["id"], "mode": "turbo"}, 400, "mode must be one of"),
        ({"file": b"not audio", "voice": voice["id"]}, 400, "not a readable audio file"),
    ):
        body, content_type = multipart(fields)
        got, _, data = call(server, "POST", "/v1/audio/convert", body, {"Content-Type": content_type})
        assert got == status and message in json.loads(data)["error"]["message"], (fields.keys(), data)


def test_serve_command_serves_until_sigterm(checkpoint, tmp_path):
    command = [sys.executable, "-m", "maskgct", "serve", "--checkpoint", str(checkpoint), "--port", "0",
               "--ui", "--voices", str(tmp_path / "voices"), "--quiet"]  # fmt: skip
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stderr.readline()  # printed once the port is bound
        assert line.startswith(f"serving {checkpoint} on cpu at http://127.0.0.1:"), line
        port = int(line.split("http://127.0.0.1:", 1)[1].split("/", 1)[0])
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        connection.request("GET", "/health")
        assert json.loads(connection.getresponse().read())["status"] == "ok"
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert process.wait(timeout=30) == 0 and time.monotonic() - started < 30
        assert process.stderr.read().strip() == "stopped"
    finally:
        process.kill()
        process.wait()
