"""The web page in a real browser: Debian's chromium, headless, driven by selenium.

The test loads ``maskgct serve --ui``'s page, uploads the fixture prompt, asks for 1.5 s with a seed,
waits for the audio element and checks the file the page offers for download: a 24 kHz wav of the asked
length, equal to what the HTTP API returns for the voice the page registered; then the same for the
voice-conversion tab. Screenshots are saved in the test's tmp folder. No browser is a failure, never a
skip: ``make browser`` installs it.
"""

import base64
import io
import json
import shutil
import threading
import urllib.request

import numpy as np
import pytest
import soundfile as sf
from pipeline_support import PROMPT_TEXT
from test_serve import multipart

from maskgct.serve.server import MaskGCTServer, ServeConfig

TEXT = "Rice is often served in round bowls."
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
# Reads the blob behind the download link (an object URL only the page can read) as base64.
SOURCE_AS_SENT = """
const done = arguments[arguments.length - 1];
toWav(document.getElementById("source-file").files[0]).then((blob) => {
  const reader = new FileReader();
  reader.onload = () => done(reader.result.split(",")[1]);
  reader.readAsDataURL(blob);
});
"""
READ_DOWNLOAD = """
const done = arguments[arguments.length - 1];
fetch(document.getElementById("download").href).then((r) => r.blob()).then((blob) => {
  const reader = new FileReader();
  reader.onload = () => done(reader.result.split(",")[1]);
  reader.readAsDataURL(blob);
});
"""


@pytest.fixture
def browser(tmp_path):
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.fail("chromium and chromium-driver are needed: run `make browser` (apt-get)", pytrace=False)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # --no-sandbox: CI runs as root, where chromium's sandbox refuses to start.
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1000,1300"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def server(tiny_checkpoint, tmp_path):
    from maskgct import MaskGCT

    tts = MaskGCT.from_pretrained(tiny_checkpoint)
    server = MaskGCTServer(("127.0.0.1", 0), tts, ServeConfig(tmp_path / "voices", ui=True))
    server.quiet = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_page_clones_a_voice_and_offers_the_result(browser, server, fixtures, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    url = "http://{}:{}".format(*server.server_address[:2])
    browser.get(url + "/")
    find = lambda name: browser.find_element(By.ID, name)  # noqa: E731
    find("prompt-file").send_keys(str(fixtures / "prompt.wav"))
    find("transcript").send_keys(PROMPT_TEXT)
    for name, value in (("text", TEXT), ("duration", "1.5"), ("steps", "2"), ("seed", "7")):
        find(name).clear()
        find(name).send_keys(value)
    find("mode").send_keys("fast")
    find("generate").click()
    WebDriverWait(browser, 120).until(lambda b: find("status").text.startswith(("done", "error")))
    browser.save_screenshot(str(tmp_path / "page.png"))
    assert find("status").text.startswith("done"), find("status").text
    assert find("audio").get_attribute("src").startswith("blob:")
    assert browser.execute_script("return document.getElementById('spectrogram').naturalWidth") > 0
    wav = base64.b64decode(browser.execute_async_script(READ_DOWNLOAD))
    audio, rate = sf.read(io.BytesIO(wav), dtype="int16")
    assert rate == 24000 and len(audio) == 74 * 480 and np.abs(audio).max() > 0
    # The page registered one voice (as 16-bit wav it decoded itself) and asked for exactly these settings.
    (voice,) = json.load(urllib.request.urlopen(url + "/v1/voices"))["data"]
    assert voice["transcript"] == PROMPT_TEXT and abs(voice["seconds"] - 2.0) < 0.01
    body = {"input": TEXT, "voice": voice["id"], "duration": 1.5, "steps": 2,
            "seed": 7, "mode": "fast"}  # fmt: skip
    request = urllib.request.Request(url + "/v1/audio/speech", json.dumps(body).encode(), method="POST")
    assert urllib.request.urlopen(request).read() == wav
    assert (tmp_path / "page.png").read_bytes().startswith(b"\x89PNG")

    # The voice-conversion tab: the fixture prompt said again in the registered voice.
    browser.find_element(By.CSS_SELECTOR, "input[name=task][value=convert]").click()
    assert not find("text").is_displayed() and find("source-file").is_displayed()
    find("source-file").send_keys(str(fixtures / "prompt.wav"))
    Select(find("voice")).select_by_value(voice["id"])
    find("generate").click()
    WebDriverWait(browser, 120).until(
        lambda b: "conversion" in find("status").text or "error" in find("status").text
    )
    browser.save_screenshot(str(tmp_path / "convert.png"))
    assert find("status").text.startswith("done"), find("status").text
    converted = base64.b64decode(browser.execute_async_script(READ_DOWNLOAD))
    audio, rate = sf.read(io.BytesIO(converted), dtype="int16")
    assert rate == 24000 and abs(len(audio) - 2 * 24000) <= 1 and np.abs(audio).max() > 0
    # The same form sent by hand, with the source as the page encoded it, gets the same file.
    source = base64.b64decode(browser.execute_async_script(SOURCE_AS_SENT))
    fields = {"file": source, "voice": voice["id"].encode(), "seed": b"7", "mode": b"fast"}
    body, content_type = multipart(fields)
    request = urllib.request.Request(
        url + "/v1/audio/convert", body, {"Content-Type": content_type}, method="POST"
    )
    assert urllib.request.urlopen(request).read() == converted
