// openai_load.mjs - the official `openai` npm client doing what `autodata chat-load` does:
// N chat.completions.create calls, at most C in flight, against one base URL, then one
// JSON summary line with the same field names as chat-load's summary.
//
//   node bench/client/openai_load.mjs --prefix DIR --base-url URL --model M \
//        --calls N --concurrency C [--warmup W] [--max-retries R] [--max-tokens T]
//
// --prefix is the folder where `npm install --prefix DIR openai` put the package.
// The request is the chat-load request: a system and a user message (same text as
// chat-load's request i), temperature 1, max_tokens, a per-call integer seed.
// W warm-up calls (default 1000, not counted) run first so V8's JIT is warm and the
// connections are open: this favours openai, so the CPU ratio we print is conservative.
// CPU is process.cpuUsage() (user + system of this process only), peak RSS is
// process.resourceUsage().maxRSS (KiB, includes the warm-up and Node itself).
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

function parseArgs(argv) {
  const a = { calls: 2000, concurrency: 64, warmup: 1000, maxRetries: 0, maxTokens: 64 };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i], v = argv[i + 1];
    switch (k) {
      case '--prefix': a.prefix = v; i++; break;
      case '--base-url': a.baseURL = v; i++; break;
      case '--model': a.model = v; i++; break;
      case '--calls': a.calls = +v; i++; break;
      case '--concurrency': a.concurrency = +v; i++; break;
      case '--warmup': a.warmup = +v; i++; break;
      case '--max-retries': a.maxRetries = +v; i++; break;
      case '--max-tokens': a.maxTokens = +v; i++; break;
      default:
        console.error(`openai_load: unknown option '${k}'`);
        process.exit(2);
    }
  }
  if (!a.prefix || !a.baseURL || !a.model || !(a.calls > 0) || !(a.concurrency > 0)) {
    console.error('usage: node openai_load.mjs --prefix DIR --base-url URL --model M --calls N --concurrency C');
    process.exit(2);
  }
  return a;
}

function request(model, i, maxTokens) {
  const topic = Number((BigInt(i) * 7919n) % 1000n);
  return {
    model,
    messages: [
      { role: 'system', content: 'You are a load-test model.' },
      { role: 'user', content: `chat-load request ${i}: write a short note about topic ${topic}.` },
    ],
    temperature: 1.0,
    max_tokens: maxTokens,
    seed: Number((BigInt(i + 1) * 2654435761n * 2246822519n) % (1n << 52n)),
  };
}

async function drive(client, a, first, count, st) {
  let next = first;
  const end = first + count;
  async function worker() {
    while (next < end) {
      const i = next++;
      try {
        const r = await client.chat.completions.create(request(a.model, i, a.maxTokens));
        if (typeof r?.choices?.[0]?.message?.content === 'string') st.ok++;
        else st.failed++;
      } catch (e) {
        st.failed++;
        if (st.failed <= 3) console.error(`openai_load: call ${i}: ${e?.message ?? e}`);
      }
    }
  }
  const workers = [];
  for (let w = 0; w < Math.min(a.concurrency, count); w++) workers.push(worker());
  await Promise.all(workers);
}

const a = parseArgs(process.argv.slice(2));
const require = createRequire(path.resolve(a.prefix, 'package.json'));
const OpenAIModule = require('openai');
const OpenAI = OpenAIModule.OpenAI ?? OpenAIModule.default ?? OpenAIModule;
const version = JSON.parse(fs.readFileSync(path.resolve(a.prefix, 'node_modules/openai/package.json'), 'utf8')).version;
const client = new OpenAI({
  baseURL: a.baseURL,
  apiKey: 'sk-bench-not-a-key',
  maxRetries: a.maxRetries,
  timeout: 600000,
});

const warm = { ok: 0, failed: 0 };
if (a.warmup > 0) await drive(client, a, a.calls, a.warmup, warm); // other request ids
const st = { ok: 0, failed: 0 };
const cpu0 = process.cpuUsage();
const t0 = performance.now();
await drive(client, a, 0, a.calls, st);
const wallMs = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
const ru = process.resourceUsage();
const n = a.calls;
console.log(JSON.stringify({
  summary: true, client: `openai-node ${version}`, node: process.version,
  calls: n, ok: st.ok, failed: st.failed, warmup: a.warmup, warmup_failed: warm.failed,
  concurrency: a.concurrency, wall_ms: +wallMs.toFixed(1),
  calls_per_s: +(n * 1000 / wallMs).toFixed(1),
  client_cpu_us_per_call: +((cpu.user + cpu.system) / n).toFixed(1),
  client_user_us_per_call: +(cpu.user / n).toFixed(1),
  client_sys_us_per_call: +(cpu.system / n).toFixed(1),
  peak_rss_kb: ru.maxRSS,
}));
process.exit(st.ok === n ? 0 : 1);
