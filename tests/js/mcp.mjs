// Drives the gateway's POST /mcp with the official TypeScript MCP SDK client (@modelcontextprotocol/sdk, pinned
// by package-lock.json): `Client` over `StreamableHTTPClientTransport`, the 2025-11-25 initialize handshake (the
// newest version this SDK speaks: it has no 2026-07-28), and the SDK's experimental tasks API
// (`client.experimental.tasks`). Driven by tests/test_ts_mcp.py.
//
// Paying: the official TypeScript x402 MCP wrapper (@x402/mcp) is not published on npm (`npm view @x402/mcp` is a
// 404), so the `pay` step does by hand what that wrapper does, with the official x402 client: call the tool,
// take the x402 PaymentRequired from the structuredContent of the isError result, have @x402/core's x402Client
// (with @x402/evm's ExactEvmScheme and a viem account) create the PaymentPayload, and call again with it in
// params._meta["x402/payment"]; the settlement comes back in result._meta["x402/payment-response"].
//
// Input: one JSON object, as the first argument or on stdin:
//   url          the gateway's MCP endpoint, e.g. "http://127.0.0.1:8080/mcp"
//   headers      extra HTTP headers on every request of the connection (Authorization, Prefer, ...)
//   privateKey   the payer's 0x key (for `pay`)
//   timeoutMs    each request's timeout (the SDK's RequestOptions.timeout; default 15000): a request the
//                server leaves unanswered fails its step with the SDK's own -32001 "Request timed out"
//   listFirst    list the tools once after connecting, unreported (default true). The SDK checks a tool's
//                structuredContent against its outputSchema only for tools it has listed.
//   steps        a list of steps, run in order on the one connection; each is {op, ...}:
//     {op: "serverInfo"}                          negotiated protocol version, server capabilities and info, and
//                                                 the SDK's LATEST_PROTOCOL_VERSION / SUPPORTED_PROTOCOL_VERSIONS
//     {op: "listTools"}                           client.listTools()
//     {op: "callTool", name, arguments, _meta}    client.callTool(): throws -32602 when structuredContent does not
//                                                 conform to the tool's outputSchema
//     {op: "pay", name, arguments}                callTool, sign the PaymentRequired it answers, callTool with it;
//                                                 result: {unpaid, paymentRequired, paid, paymentResponse}
//     {op: "callToolAsTask", name, arguments, ttl, detach}
//                                                 client.experimental.tasks.callToolStream() with a task (ttl ms):
//                                                 result: {messages: [taskCreated, taskStatus..., result]};
//                                                 detach: stop reading after taskCreated (the task goes on)
//     {op: "getTask", taskId, untilTerminal}      experimental.tasks.getTask(); untilTerminal: poll (at the
//                                                 task's pollInterval) until completed, failed or cancelled
//     {op: "getTaskResult", taskId, name}         experimental.tasks.getTaskResult() as a CallToolResult; with
//                                                 name, also `outputSchema: {valid, errorMessage}`: the result's
//                                                 structuredContent checked by the SDK's own validator against
//                                                 that tool's outputSchema (getTaskResult itself checks nothing)
//     {op: "listTasks", cursor}                   experimental.tasks.listTasks()
//     {op: "cancelTask", taskId}                  experimental.tasks.cancelTask()
//   A taskId of "$last" is the task most recently created by a callToolAsTask step of this run.
// Output: one JSON line per step: {step, n, ok: true, result} or {step, n, ok: false, error: {code, message,
// data}} (callToolAsTask also carries `messages` when it ends in an error). Steps go on after a failed one.
// A connection that fails prints {step: "connect", ok: false, error} and exits 1.
import { readFileSync } from "node:fs";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import {
  CallToolResultSchema,
  LATEST_PROTOCOL_VERSION,
  SUPPORTED_PROTOCOL_VERSIONS,
} from "@modelcontextprotocol/sdk/types.js";
import { AjvJsonSchemaValidator } from "@modelcontextprotocol/sdk/validation/ajv";
import { x402Client } from "@x402/core/client";
import { ExactEvmScheme } from "@x402/evm/exact/client";
import { privateKeyToAccount } from "viem/accounts";

const PAYMENT_META = "x402/payment";
const PAYMENT_RESPONSE_META = "x402/payment-response";
const TERMINAL = new Set(["completed", "failed", "cancelled"]);
const POLL_MS = 200; // getTask untilTerminal, when the task names no pollInterval
const POLL_LIMIT_MS = 30_000;

const input = JSON.parse(process.argv[2] ?? readFileSync(0, "utf8"));
const options = { timeout: input.timeoutMs ?? 15_000 }; // RequestOptions for every request
const client = new Client({ name: "server402-ts-mcp-test", version: "0.1.0" }, { capabilities: {} });
const transport = new StreamableHTTPClientTransport(new URL(input.url), {
  requestInit: { headers: input.headers ?? {} },
});
const tools = new Map(); // name -> the listed Tool
let lastTaskId = null;

function print(line) {
  console.log(JSON.stringify(line));
}

function errorOf(error) {
  const out = { code: error?.code ?? null, message: String(error?.message ?? error) };
  if (error?.data !== undefined) out.data = error.data;
  return out;
}

function taskIdOf(step) {
  return step.taskId === "$last" ? lastTaskId : step.taskId;
}

async function listTools() {
  const listed = await client.listTools(undefined, options); // caches the outputSchema validators callTool uses
  for (const tool of listed.tools) tools.set(tool.name, tool);
  return listed;
}

function callParams(step) {
  const params = { name: step.name, arguments: step.arguments ?? {} };
  if (step._meta !== undefined) params._meta = step._meta;
  return params;
}

async function pay(step) {
  const unpaid = await client.callTool(callParams(step), CallToolResultSchema, options);
  if (!unpaid.isError || !unpaid.structuredContent?.accepts) {
    throw new Error(`the unpaid call asked for no payment: ${JSON.stringify(unpaid)}`);
  }
  const paymentRequired = unpaid.structuredContent;
  const payer = new x402Client().register("eip155:*", new ExactEvmScheme(privateKeyToAccount(input.privateKey)));
  const payload = await payer.createPaymentPayload(paymentRequired);
  const params = { ...callParams(step), _meta: { ...step._meta, [PAYMENT_META]: payload } };
  const paid = await client.callTool(params, CallToolResultSchema, options);
  return { unpaid, paymentRequired, paid, paymentResponse: paid._meta?.[PAYMENT_RESPONSE_META] ?? null };
}

async function callToolAsTask(step) {
  const task = step.ttl === undefined ? {} : { ttl: step.ttl };
  const taskOptions = { ...options, task };
  const stream = client.experimental.tasks.callToolStream(callParams(step), CallToolResultSchema, taskOptions);
  const messages = [];
  for await (const message of stream) {
    if (message.type === "error") {
      messages.push({ type: "error", error: errorOf(message.error) });
      const failure = new Error(message.error?.message ?? String(message.error));
      failure.code = message.error?.code;
      failure.data = message.error?.data;
      failure.messages = messages;
      throw failure;
    }
    messages.push(message);
    if (message.type === "taskCreated") {
      lastTaskId = message.task.taskId;
      if (step.detach) break;
    }
  }
  return { messages };
}

async function getTask(step) {
  const taskId = taskIdOf(step);
  let task = await client.experimental.tasks.getTask(taskId, options);
  const started = Date.now();
  while (step.untilTerminal && !TERMINAL.has(task.status)) {
    if (Date.now() - started > POLL_LIMIT_MS) throw new Error(`task ${taskId} still ${task.status}`);
    await new Promise((resolve) => setTimeout(resolve, Math.min(task.pollInterval ?? POLL_MS, 1000)));
    task = await client.experimental.tasks.getTask(taskId, options);
  }
  return task;
}

async function getTaskResult(step) {
  const result = await client.experimental.tasks.getTaskResult(taskIdOf(step), CallToolResultSchema, options);
  const tool = step.name === undefined ? undefined : tools.get(step.name);
  if (tool?.outputSchema && result.structuredContent !== undefined) {
    const check = new AjvJsonSchemaValidator().getValidator(tool.outputSchema)(result.structuredContent);
    return { ...result, outputSchema: { valid: check.valid, errorMessage: check.errorMessage ?? null } };
  }
  return result;
}

const STEPS = {
  serverInfo: async () => ({
    protocolVersion: transport.protocolVersion ?? null,
    serverCapabilities: client.getServerCapabilities() ?? null,
    serverVersion: client.getServerVersion() ?? null,
    sdk: { LATEST_PROTOCOL_VERSION, SUPPORTED_PROTOCOL_VERSIONS },
  }),
  listTools,
  callTool: (step) => client.callTool(callParams(step), CallToolResultSchema, options),
  pay,
  callToolAsTask,
  getTask,
  getTaskResult,
  listTasks: (step) => client.experimental.tasks.listTasks(step.cursor, options),
  cancelTask: (step) => client.experimental.tasks.cancelTask(taskIdOf(step), options),
};

try {
  await client.connect(transport, options);
  if (input.listFirst ?? true) await listTools();
} catch (error) {
  print({ step: "connect", ok: false, error: errorOf(error) });
  process.exit(1);
}

for (const [n, step] of (input.steps ?? []).entries()) {
  const run = STEPS[step.op];
  try {
    if (run === undefined) throw new Error(`unknown op ${JSON.stringify(step.op)}`);
    print({ step: step.op, n, ok: true, result: await run(step) });
  } catch (error) {
    const line = { step: step.op, n, ok: false, error: errorOf(error) };
    if (error?.messages) line.messages = error.messages;
    print(line);
  }
}
await client.close();
