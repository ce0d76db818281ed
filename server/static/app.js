// specvoice browser client: the OpenAI Realtime protocol over a WebSocket, plus the x.* extensions.
const WIRE_RATE = 24000;
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const key = params.get("key"); // API key, when the server has keys configured

// Exposed for tests and curious users: what the page has seen and played.
const state = window.specvoice = { events: [], playedFrames: 0, audioFrames: 0, turns: [], connected: false };

// -- connection ---------------------------------------------------------------------------------------
const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/realtime`;
const ws = new WebSocket(url, key ? ["realtime", `openai-insecure-api-key.${key}`] : ["realtime"]);
const send = (event) => ws.readyState === WebSocket.OPEN && ws.send(JSON.stringify(event));

ws.onopen = () => {
  state.connected = true;
  setStatus("connected");
  send({ type: "session.update", session: { type: "realtime", x_events: true } });
};
ws.onclose = (e) => { state.connected = false; setStatus(`disconnected (${e.code}${e.reason ? ": " + e.reason : ""})`); };
ws.onmessage = (m) => {
  const event = JSON.parse(m.data);
  state.events.push(event.type);
  (handlers[event.type] || (() => {}))(event);
};

function setStatus(text) { $("status").textContent = text; }

function showError(text) {
  const box = $("errors");
  box.hidden = false;
  box.textContent = (box.textContent + "\n" + text).trim().split("\n").slice(-6).join("\n");
}

// -- audio --------------------------------------------------------------------------------------------
let ctx = null, playback = null, mic = null;
let assistantItem = null, assistantStart = 0; // the item now playing, and where its audio began

async function audioContext() {
  if (ctx) return ctx;
  try { ctx = new AudioContext({ sampleRate: WIRE_RATE }); } catch { ctx = new AudioContext(); }
  await ctx.audioWorklet.addModule("/static/worklets.js");
  playback = new AudioWorkletNode(ctx, "playback", { outputChannelCount: [1] });
  playback.port.onmessage = (e) => { state.playedFrames = e.data.played; };
  playback.connect(ctx.destination);
  return ctx;
}

function toBase64(buffer) {
  const bytes = new Uint8Array(buffer);
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function pcm16ToFloat(b64) {
  const bin = atob(b64);
  const pcm = new Int16Array(bin.length / 2);
  for (let i = 0; i < pcm.length; i++) pcm[i] = bin.charCodeAt(2 * i) | (bin.charCodeAt(2 * i + 1) << 8);
  const out = new Float32Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) out[i] = pcm[i] / 32768;
  if (!ctx || ctx.sampleRate === WIRE_RATE) return out;
  const ratio = WIRE_RATE / ctx.sampleRate, n = Math.floor(out.length / ratio), res = new Float32Array(n);
  for (let i = 0; i < n; i++) res[i] = out[Math.min(out.length - 1, Math.round(i * ratio))];
  return res;
}

async function startMic() {
  await audioContext();
  await ctx.resume();
  const stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true, channelCount: 1 } });
  const source = ctx.createMediaStreamSource(stream);
  const capture = new AudioWorkletNode(ctx, "capture");
  capture.port.onmessage = (e) => send({ type: "input_audio_buffer.append", audio: toBase64(e.data) });
  source.connect(capture);
  mic = { stream, source, capture };
}

function stopMic() {
  mic.source.disconnect(); mic.capture.disconnect();
  mic.stream.getTracks().forEach((t) => t.stop());
  mic = null;
}

$("talk").onclick = async () => {
  try {
    if (mic) { stopMic(); $("talk").textContent = "Start talking"; $("talk").classList.remove("on"); return; }
    await startMic();
    $("talk").textContent = "Stop"; $("talk").classList.add("on");
  } catch (e) { showError(`microphone: ${e.message}`); }
};

function bargeIn() {
  // The user speaks over the answer: stop playback now and tell the server what was heard.
  if (!playback) return;
  playback.port.postMessage({ type: "clear" });
  if (assistantItem) {
    const heardMs = Math.max(0, Math.round((state.playedFrames - assistantStart) / ctx.sampleRate * 1000));
    send({ type: "conversation.item.truncate", item_id: assistantItem, content_index: 0, audio_end_ms: heardMs });
    assistantItem = null;
  }
}

// -- conversation -------------------------------------------------------------------------------------
const bubbles = new Map();

function bubble(id, role) {
  let el = bubbles.get(id);
  if (!el) {
    el = document.createElement("div");
    el.className = `msg ${role}`;
    el.dataset.item = id;
    bubbles.set(id, el);
    $("messages").append(el);
  }
  $("messages").scrollTop = $("messages").scrollHeight;
  return el;
}

let typedSent = "";
$("text").addEventListener("input", () => {
  // Stream what is typed, so the agent starts thinking before Enter (as it does on speech).
  const value = $("text").value;
  if (value.startsWith(typedSent) && value.length > typedSent.length) {
    send({ type: "x.input_text.delta", delta: value.slice(typedSent.length) });
    typedSent = value;
  }
});
$("typed").addEventListener("submit", async (e) => {
  e.preventDefault();
  const text = $("text").value.trim();
  if (!text) return;
  await audioContext().then(() => ctx.resume()).catch(() => {});
  bargeIn();
  if (!typedSent) send({ type: "x.input_text.delta", delta: text });
  send({ type: "x.input_text.commit", text });
  $("text").value = ""; typedSent = "";
});

// -- tool calls, trace, timeline ------------------------------------------------------------------------
function toolRow(e) {
  const id = `${e.turn_id}:${e.call_id}`;
  let row = document.querySelector(`tr[data-call="${CSS.escape(id)}"]`);
  if (!row) {
    row = document.createElement("tr");
    row.dataset.call = id;
    row.innerHTML = "<td></td><td class='call'></td><td><span class='state'></span></td><td class='result'></td>";
    $("calls").tBodies[0].prepend(row);
  }
  row.cells[0].textContent = e.call_id;
  row.cells[1].textContent = `${e.name}(${JSON.stringify(e.arguments)})`;
  const event = e.type.slice("x.tool_call.".length);
  const label = event === "issued" && e.speculative ? "speculative" : event;
  const badge = row.querySelector(".state");
  badge.textContent = label + (e.speculative && label !== "speculative" ? " (spec.)" : "");
  badge.className = `state ${label}`;
  if (e.result !== null && e.result !== undefined) row.cells[3].textContent = JSON.stringify(e.result);
}

const COLORS = { speech: "#93c5fd", asr: "#a78bfa", llm: "#94a3b8", tool: "#fb923c", spec: "#fde68a", answer: "#22c55e", audio: "#065f46" };

function drawTimeline() {
  const rows = state.turns.slice(-8);
  const span = Math.max(4, ...rows.map((t) => Math.max(...t.ledger.marks.map((m) => m.t), 0)));
  const W = 1000, H = 26, left = 150;
  const x = (t) => left + (t / span) * (W - left - 10);
  let svg = `<svg viewBox="0 0 ${W} ${rows.length * H + 20}" role="img" aria-label="latency timeline">`;
  rows.forEach((turn, r) => {
    const y = r * H + 4, marks = turn.ledger.marks, d = turn.ledger.derived;
    const first = (k) => marks.find((m) => m.kind === k);
    const bar = (a, b, color, dashed) => {
      if (a === undefined || b === undefined || b < a) return;
      svg += `<rect x="${x(a)}" y="${y}" width="${Math.max(2, x(b) - x(a))}" height="${H - 10}" fill="${color}"${dashed ? ' stroke="#b45309" stroke-dasharray="3 2"' : ""}/>`;
    };
    const tick = (m, color) => m && (svg += `<rect x="${x(m.t) - 1.5}" y="${y - 2}" width="3" height="${H - 6}" fill="${color}"/>`);
    bar(first("speech_start")?.t, first("speech_end")?.t, COLORS.speech);
    bar(first("speech_end")?.t, first("final_transcript")?.t, COLORS.asr);
    marks.filter((m) => m.kind === "llm_request").forEach((m) => {
      const tok = marks.find((n) => n.kind === "first_token" && n.gen === m.gen);
      bar(m.t, tok?.t, COLORS.llm);
    });
    const calls = {};
    marks.filter((m) => m.kind === "tool_call").forEach((m) => { (calls[`${m.call_id}.${m.version}`] ||= {})[m.event] = m; });
    Object.values(calls).forEach((c) => {
      const end = c.completed || c.failed || c.cancelled;
      if (c.started) bar(c.started.t, end?.t, c.started.speculative ? COLORS.spec : COLORS.tool, Boolean(c.cancelled));
    });
    tick(first("answer_start"), COLORS.answer);
    tick(first("first_audio"), COLORS.audio);
    const latency = d.response_latency == null ? "–" : `${Math.round(d.response_latency * 1000)} ms`;
    svg += `<text x="4" y="${y + 12}" font-size="12">${turn.turn_id} · ${latency}</text>`;
  });
  const ticks = [0, span / 4, span / 2, (3 * span) / 4, span];
  ticks.forEach((t) => { svg += `<text x="${x(t)}" y="${rows.length * H + 16}" font-size="10" text-anchor="middle">${t.toFixed(1)} s</text>`; });
  $("timeline").innerHTML = svg + "</svg>";
}

// -- server events ------------------------------------------------------------------------------------
const handlers = {
  "session.created": () => setStatus("connected: say something, or type"),
  "input_audio_buffer.speech_started": (e) => { bargeIn(); bubble(e.item_id, "user partial").textContent = "…"; },
  "conversation.item.input_audio_transcription.delta": (e) => {
    const el = bubble(e.item_id, "user partial");
    el.textContent = (el.textContent === "…" ? "" : el.textContent) + e.delta;
  },
  "conversation.item.input_audio_transcription.completed": (e) => {
    const el = bubble(e.item_id, "user");
    el.className = "msg user";
    el.textContent = e.transcript || "(nothing heard)";
  },
  "conversation.item.added": (e) => {
    const c = e.item.content && e.item.content[0];
    if (e.item.role === "user" && c && c.type === "input_text") bubble(e.item.id, "user").textContent = c.text;
  },
  "response.output_item.added": (e) => { if (e.item.type === "message") bubble(e.item.id, "assistant"); },
  "response.output_audio_transcript.delta": (e) => { bubble(e.item_id, "assistant").textContent += e.delta; },
  "response.output_text.delta": (e) => { bubble(e.item_id, "assistant").textContent += e.delta; },
  "response.output_audio.delta": (e) => {
    if (!playback) return;
    if (assistantItem !== e.item_id) { assistantItem = e.item_id; assistantStart = state.playedFrames; }
    const samples = pcm16ToFloat(e.delta);
    state.audioFrames += samples.length;
    playback.port.postMessage({ type: "push", samples }, [samples.buffer]);
  },
  "response.done": (e) => {
    if (e.response.status === "cancelled") {
      for (const item of e.response.output || []) bubbles.get(item.id)?.classList.add("cancelled");
    }
  },
  "x.trace": (e) => {
    const span = document.createElement("span");
    span.className = e.source;
    span.textContent = e.text;
    $("trace").append(span);
    $("trace").scrollTop = $("trace").scrollHeight;
  },
  "x.turn.latency": (e) => { state.turns.push(e); drawTimeline(); },
  "error": (e) => showError(`${e.error.code}: ${e.error.message}`),
};
for (const kind of ["issued", "revised", "held", "committed", "started", "completed", "failed", "cancelled"]) {
  handlers[`x.tool_call.${kind}`] = toolRow;
}
