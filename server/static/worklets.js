// Audio worklets: microphone capture to pcm16 at 24 kHz, and playback of 24 kHz audio.
const WIRE_RATE = 24000;

class Capture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / WIRE_RATE; // input samples per output sample
    this.pos = 0; // fractional read position into the pending input
    this.pending = new Float32Array(0);
    this.out = new Int16Array(480); // 20 ms at 24 kHz
    this.fill = 0;
  }

  process(inputs) {
    const input = inputs[0] && inputs[0][0];
    if (!input) return true;
    const data = new Float32Array(this.pending.length + input.length);
    data.set(this.pending);
    data.set(input, this.pending.length);
    while (this.pos + 1 < data.length) { // linear interpolation to 24 kHz
      const i = Math.floor(this.pos), f = this.pos - i;
      const s = Math.max(-1, Math.min(1, data[i] * (1 - f) + data[i + 1] * f));
      this.out[this.fill++] = s < 0 ? s * 32768 : s * 32767;
      if (this.fill === this.out.length) {
        this.port.postMessage(this.out.buffer.slice(0));
        this.fill = 0;
      }
      this.pos += this.step;
    }
    const keep = Math.floor(this.pos);
    this.pending = data.slice(keep);
    this.pos -= keep;
    return true;
  }
}

class Playback extends AudioWorkletProcessor {
  constructor() {
    super();
    this.queue = [];
    this.offset = 0;
    this.played = 0; // frames played since the start, reported to the page
    this.quanta = 0;
    this.port.onmessage = (e) => {
      if (e.data.type === "push") this.queue.push(e.data.samples);
      if (e.data.type === "clear") { this.queue = []; this.offset = 0; }
      this.port.postMessage({ played: this.played, queued: this.queuedFrames() });
    };
  }

  queuedFrames() {
    return this.queue.reduce((n, q) => n + q.length, 0) - this.offset;
  }

  process(_inputs, outputs) {
    const out = outputs[0][0];
    let i = 0;
    while (i < out.length && this.queue.length) {
      const head = this.queue[0];
      const n = Math.min(out.length - i, head.length - this.offset);
      out.set(head.subarray(this.offset, this.offset + n), i);
      i += n; this.offset += n; this.played += n;
      if (this.offset === head.length) { this.queue.shift(); this.offset = 0; }
    }
    out.fill(0, i);
    if (++this.quanta % 12 === 0) this.port.postMessage({ played: this.played, queued: this.queuedFrames() });
    return true;
  }
}

registerProcessor("capture", Capture);
registerProcessor("playback", Playback);
