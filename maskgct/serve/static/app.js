// The page talks to the same server's HTTP API: POST /v1/voices registers the prompt once (its id is kept
// for the same file and transcript), POST /v1/audio/speech makes the audio, POST /v1/audio/spectrogram draws it.
// Where the server converts voices (GET /health lists "convert"), a second tab sends a source recording and
// the voice to POST /v1/audio/convert.
// Recordings and uploads are decoded by the browser and sent as 16-bit wav, so any format the browser
// plays (webm/opus from the microphone included) reaches the server in one format it reads.
"use strict";

const $ = (id) => document.getElementById(id);
let recorded = null; // the last microphone recording, a Blob
let registered = { key: null, id: null };
let lastUrl = null;

function status(message, isError = false) {
  $("status").textContent = message;
  $("status").className = isError ? "error" : "";
}

async function api(path, options) {
  const response = await fetch(path, options);
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try { message = (await response.json()).error.message; } catch (e) { /* not JSON: keep the status */ }
    throw new Error(message);
  }
  return response;
}

// Float samples (one channel) → a 16-bit PCM wav Blob.
function wavBlob(samples, rate) {
  const view = new DataView(new ArrayBuffer(44 + samples.length * 2));
  const text = (offset, s) => [...s].forEach((c, i) => view.setUint8(offset + i, c.charCodeAt(0)));
  text(0, "RIFF"); view.setUint32(4, 36 + samples.length * 2, true); text(8, "WAVE");
  text(12, "fmt "); view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
  view.setUint32(24, rate, true); view.setUint32(28, rate * 2, true); view.setUint16(32, 2, true);
  view.setUint16(34, 16, true); text(36, "data"); view.setUint32(40, samples.length * 2, true);
  samples.forEach((x, i) => view.setInt16(44 + i * 2, Math.max(-1, Math.min(1, x)) * 32767, true));
  return new Blob([view], { type: "audio/wav" });
}

async function toWav(blob) {
  // An offline context decodes without needing a sound card (headless browsers have none).
  const context = new OfflineAudioContext(1, 1, 24000);
  const audio = await context.decodeAudioData(await blob.arrayBuffer());
  const mono = new Float32Array(audio.length);
  for (let c = 0; c < audio.numberOfChannels; c++) {
    audio.getChannelData(c).forEach((x, i) => { mono[i] += x / audio.numberOfChannels; });
  }
  return wavBlob(mono, audio.sampleRate);
}

async function loadVoices(select) {
  const voices = (await (await api("/v1/voices")).json()).data;
  $("voice").length = 1;
  for (const v of voices) $("voice").add(new Option(`${v.id} (${v.seconds} s) ${v.transcript || ""}`, v.id));
  if (select) $("voice").value = select;
}

async function voiceId() {
  if ($("voice").value) return $("voice").value;
  const file = $("prompt-file").files[0];
  const source = file || recorded;
  if (!source) throw new Error("choose a registered voice, upload a recording or record one");
  const key = `${file ? file.name + file.size + file.lastModified : "recording" + recorded.size}|${$("transcript").value}`;
  if (registered.key === key) return registered.id;
  status("registering the voice…");
  const form = new FormData();
  form.append("file", await toWav(source), "prompt.wav");
  if ($("transcript").value.trim()) form.append("transcript", $("transcript").value.trim());
  const voice = await (await api("/v1/voices", { method: "POST", body: form })).json();
  registered = { key, id: voice.id };
  await loadVoices();
  return voice.id;
}

function task() {
  return document.querySelector("input[name=task]:checked").value;
}

function speechRequest(voice) {
  const body = { input: $("text").value, voice, response_format: "wav", mode: $("mode").value };
  for (const [name, parse] of [["speed", parseFloat], ["duration", parseFloat], ["steps", parseInt], ["seed", parseInt]]) {
    if ($(name).value !== "") body[name] = parse($(name).value);
  }
  return body;
}

async function speak() {
  if (!$("text").value.trim()) throw new Error("write the text to speak");
  const voice = await voiceId();
  status("generating…");
  const options = { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(speechRequest(voice)) };
  return [await (await api("/v1/audio/speech", options)).blob(), `voice ${voice}`];
}

async function convert() {
  const source = $("source-file").files[0];
  if (!source) throw new Error("upload the source recording to convert");
  const form = new FormData();
  form.append("file", await toWav(source), "source.wav");
  const prompt = $("prompt-file").files[0] || recorded;
  if ($("voice").value) form.append("voice", $("voice").value);
  else if (prompt) form.append("reference", await toWav(prompt), "reference.wav");
  else throw new Error("choose a registered voice, upload a recording or record one");
  for (const name of ["seed", "mode"]) if ($(name).value !== "") form.append(name, $(name).value);
  status("converting…");
  return [await (await api("/v1/audio/convert", { method: "POST", body: form })).blob(), "voice conversion"];
}

$("form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("generate").disabled = true;
  try {
    const started = performance.now();
    const [audio, label] = await (task() === "convert" ? convert() : speak());
    if (lastUrl) URL.revokeObjectURL(lastUrl);
    lastUrl = URL.createObjectURL(audio);
    $("audio").src = lastUrl;
    $("download").href = lastUrl;
    $("result").hidden = false;
    const picture = await (await api("/v1/audio/spectrogram", { method: "POST", body: audio })).blob();
    $("spectrogram").src = URL.createObjectURL(picture);
    status(`done in ${((performance.now() - started) / 1000).toFixed(1)} s (${label})`);
  } catch (error) {
    status(`error: ${error.message}`, true);
  } finally {
    $("generate").disabled = false;
  }
});

for (const radio of document.querySelectorAll("input[name=task]")) {
  radio.addEventListener("change", () => {
    for (const el of document.querySelectorAll(".clone")) el.hidden = task() !== "clone";
    for (const el of document.querySelectorAll(".convert")) el.hidden = task() !== "convert";
  });
}

$("prompt-file").addEventListener("change", () => { $("voice").value = ""; });

$("record").addEventListener("click", async () => {
  if ($("record").recorder) { $("record").recorder.stop(); return; }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const recorder = new MediaRecorder(stream);
    const parts = [];
    recorder.ondataavailable = (e) => parts.push(e.data);
    recorder.onstop = () => {
      stream.getTracks().forEach((t) => t.stop());
      recorded = new Blob(parts, { type: recorder.mimeType });
      $("prompt-file").value = "";
      $("voice").value = "";
      $("record").recorder = null;
      $("record").textContent = "Record";
      $("record-status").textContent = "recorded: it will be the prompt";
    };
    recorder.start();
    $("record").recorder = recorder;
    $("record").textContent = "Stop";
    $("record-status").textContent = "recording… (1-30 s)";
  } catch (error) {
    status(`error: the microphone: ${error.message}`, true);
  }
});

loadVoices().catch((error) => status(`error: ${error.message}`, true));
api("/health").then(async (r) => { $("tabs").hidden = !(await r.json()).features.includes("convert"); });
