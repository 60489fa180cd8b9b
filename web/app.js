// The ESC-50 classifier in the browser: model.onnx is the waveform graph of `esc50-hf export-onnx --waveform`
// (front end inside), model.json its metadata (labels, sampling rate, clip length). Windows and their weighting
// follow esc50_hf/model/windows.py: one window for input up to a clip, else one every half clip and a last one
// ending at the end of the input; clip scores are the windows' probabilities weighted by their real samples times
// their mean power (plus model.json's window_power_floor), so the loudest stretch of a long recording answers.
// The unknown answer follows esc50_hf/model/prediction.py's unknown_score: the pooled top score's and atypicality's
// shares of held-out known clips (model.json's unknown_quantiles), below unknown_threshold: none of the known sounds.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { session: null, meta: null, windowMs: [] };
window.esc50 = { ready: false, result: null, error: null, windowMs: state.windowMs };

function showError(message) {
  $("error").textContent = message;
  window.esc50.error = message;
}

async function load() {
  ort.env.wasm.numThreads = 1; // threads need cross-origin isolation headers a plain static server does not send
  state.meta = await (await fetch("model.json")).json();
  state.session = await ort.InferenceSession.create("model.onnx", { executionProviders: ["wasm"] });
  $("status").textContent = `Ready: ${state.meta.labels.length} labels, ${state.meta.sampling_rate} Hz.`;
  window.esc50.ready = true;
}

// Any decoded AudioBuffer -> mono Float32Array at the model's rate (WebAudio mixes down and resamples).
async function toModelRate(buffer) {
  const rate = state.meta.sampling_rate;
  const length = Math.max(1, Math.ceil(buffer.duration * rate));
  const context = new OfflineAudioContext(1, length, rate);
  const source = context.createBufferSource();
  source.buffer = buffer;
  source.connect(context.destination);
  source.start();
  return (await context.startRendering()).getChannelData(0);
}

function windowStarts(numSamples, clip, hop) {
  if (numSamples <= clip) return [0];
  const starts = [];
  for (let start = 0; start < numSamples - clip; start += hop) starts.push(start);
  starts.push(numSamples - clip);
  return starts;
}

async function classifyWindow(samples) {
  const started = performance.now();
  const input = new ort.Tensor("float32", samples, [1, samples.length]);
  const output = await state.session.run({ waveform: input });
  state.windowMs.push(performance.now() - started);
  return { probabilities: output.probabilities.data, atypicality: output.atypicality.data[0] };
}

// The share of a sorted table below value, ties counted half (prediction.py's _share_at_most).
function shareAtMost(table, value) {
  let below = 0, atMost = 0;
  for (const entry of table) {
    if (entry < value) below += 1;
    if (entry <= value) atMost += 1;
  }
  return (below + atMost) / (2 * table.length);
}

function unknownScore(topScore, atypicality) {
  const tables = state.meta.unknown_quantiles;
  if (!tables) return topScore;
  const typical = (1 - shareAtMost(tables.atypicality, atypicality)) / (tables.atypicality_tail ?? 1);
  return shareAtMost(tables.top_score, topScore) * Math.min(1, typical);
}

async function classify(samples) {
  const { clip_samples: clip, sampling_rate: rate, labels } = state.meta;
  if (samples.length === 0) throw new Error("The audio is empty (0 samples).");
  const sums = new Float64Array(labels.length);
  let total = 0, atypicalSum = 0;
  const windows = [];
  for (const start of windowStarts(samples.length, clip, Math.floor(clip / 2))) {
    const piece = samples.slice(start, start + clip);
    const { probabilities, atypicality } = await classifyWindow(piece);
    const power = piece.reduce((sum, x) => sum + x * x, 0) / piece.length;
    const weight = (piece.length / clip) * (power + state.meta.window_power_floor);
    probabilities.forEach((p, i) => { sums[i] += weight * p; });
    atypicalSum += weight * atypicality;
    total += weight;
    const best = probabilities.indexOf(Math.max(...probabilities));
    windows.push({ start_s: start / rate, end_s: (start + piece.length) / rate, label: labels[best], score: probabilities[best] });
  }
  const scores = Array.from(sums, (sum, i) => ({ label: labels[i], score: sum / total }));
  scores.sort((a, b) => b.score - a.score);
  const threshold = state.meta.unknown_threshold;
  const score = unknownScore(scores[0].score, atypicalSum / total);
  const unknown = threshold === null ? null : score < threshold;
  return { labels: scores.slice(0, 5), windows, duration_s: samples.length / rate, unknown, unknown_score: score };
}

// The answer's headline, as the app words it (esc50_hf/serving/app.py's UNKNOWN_HEADLINE).
function headline(result) {
  const { label, score } = result.labels[0];
  const name = label.replaceAll("_", " ");
  return result.unknown ? `Not one of the known sounds — best guess: ${name} (${Math.round(score * 100)}%)` : name;
}

function show(result) {
  $("answer").textContent = headline(result);
  $("labels").innerHTML = "";
  for (const { label, score } of result.labels) {
    const row = $("labels").insertRow();
    row.insertCell().textContent = label;
    row.insertCell().textContent = score.toFixed(3);
  }
  $("timeline").innerHTML = "";
  for (const w of result.windows) {
    const cell = document.createElement("div");
    cell.textContent = `${w.start_s.toFixed(1)}–${w.end_s.toFixed(1)} s: ${w.label} (${w.score.toFixed(2)})`;
    $("timeline").appendChild(cell);
  }
  const ms = state.windowMs;
  const median = [...ms].sort((a, b) => a - b)[Math.floor(ms.length / 2)];
  $("timing").textContent = `${ms.length} windows classified, median ${median.toFixed(1)} ms per 5-s window (WASM, one thread).`;
  window.esc50.result = result;
}

async function run(samples, what) {
  showError("");
  $("status").textContent = `Classifying ${what}…`;
  try {
    show(await classify(samples));
    $("status").textContent = `Classified ${what}.`;
  } catch (error) {
    showError(`Could not classify ${what}: ${error.message}`);
  }
}

$("file").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  if (!file) return;
  let samples;
  try {
    const decoder = new OfflineAudioContext(1, 1, state.meta.sampling_rate);
    samples = await toModelRate(await decoder.decodeAudioData(await file.arrayBuffer()));
  } catch (error) {
    showError(`Could not decode ${file.name}: choose a WAV, FLAC, MP3 or OGG file.`);
    return;
  }
  await run(samples, file.name);
});

// The microphone: raw samples are collected until Stop, then classified like a file.
const recording = { stream: null, context: null, chunks: [] };

function microphoneMessage(error) {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia)
    return "The microphone is not available here: open this page over https or from localhost, or choose a file.";
  if (error && (error.name === "NotAllowedError" || error.name === "SecurityError"))
    return "Microphone access was denied: allow it in the browser's site settings, or choose a file instead.";
  if (error && (error.name === "NotFoundError" || error.name === "OverconstrainedError"))
    return "No microphone was found: connect one, or choose a file instead.";
  return `The microphone could not be opened (${error ? error.message || error.name : "unknown error"}): choose a file instead.`;
}

$("record").addEventListener("click", async () => {
  showError("");
  let stream;
  try {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) throw null;
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (error) {
    showError(microphoneMessage(error));
    return;
  }
  const context = new AudioContext();
  const source = context.createMediaStreamSource(stream);
  const processor = context.createScriptProcessor(4096, 1, 1);
  recording.chunks = [];
  processor.onaudioprocess = (event) => recording.chunks.push(new Float32Array(event.inputBuffer.getChannelData(0)));
  source.connect(processor);
  processor.connect(context.destination);
  Object.assign(recording, { stream, context });
  $("record").disabled = true;
  $("stop").disabled = false;
  $("status").textContent = "Recording… press Stop to classify.";
});

$("stop").addEventListener("click", async () => {
  const { stream, context, chunks } = recording;
  stream.getTracks().forEach((track) => track.stop());
  await context.close();
  $("record").disabled = false;
  $("stop").disabled = true;
  const length = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  const buffer = new AudioBuffer({ length: Math.max(1, length), numberOfChannels: 1, sampleRate: context.sampleRate });
  let offset = 0;
  for (const chunk of chunks) { buffer.copyToChannel(chunk, 0, offset); offset += chunk.length; }
  await run(await toModelRate(buffer), "the recording");
});

load().catch((error) => showError(`Could not load the model: ${error.message}`));
