// Pays a server402 endpoint with the official x402 TypeScript client (@x402/fetch + @x402/evm + @x402/extensions).
//
// Input: one JSON object, as the first argument or on stdin:
//   baseUrl      the gateway, e.g. "http://127.0.0.1:8080"
//   path         e.g. "/api/tools/face-detection" or "/api/payments"
//   body         the JSON body, POSTed
//   privateKey   the payer's 0x key
//   paymentIdentifier  true: add x402's payment-identifier extension (the official example's way: an
//                onBeforePaymentCreation hook calling appendPaymentIdentifierToExtensions)
//   paymentId    a fixed id for it (implies paymentIdentifier; else one id generated per run)
//   payments     how many requests go through wrapFetchWithPayment (each signs a new payload; default 1)
//   replays      how many times the last signed PAYMENT-SIGNATURE is sent again as it was, with plain fetch
// Output: one JSON line per request: {kind: "paid"|"replay", status, body, paymentResponse, paymentId}, where
// paymentResponse is the decoded PAYMENT-RESPONSE header (or null) and paymentId the id the request carried.
// A client error prints {kind: "error", error} and exits 1.
import { readFileSync } from "node:fs";
import { decodePaymentResponseHeader, wrapFetchWithPayment, x402Client } from "@x402/fetch";
import { ExactEvmScheme } from "@x402/evm/exact/client";
import { decodePaymentSignatureHeader } from "@x402/core/http";
import {
  PAYMENT_IDENTIFIER,
  appendPaymentIdentifierToExtensions,
  generatePaymentId,
} from "@x402/extensions/payment-identifier";
import { privateKeyToAccount } from "viem/accounts";

const input = JSON.parse(process.argv[2] ?? readFileSync(0, "utf8"));
const url = new URL(input.path, input.baseUrl).href;
const init = () => ({
  method: "POST",
  headers: { "Content-Type": "application/json" },
  body: JSON.stringify(input.body ?? {}),
});

const client = new x402Client().register("eip155:*", new ExactEvmScheme(privateKeyToAccount(input.privateKey)));
if (input.paymentIdentifier || input.paymentId) {
  const id = input.paymentId ?? generatePaymentId();
  client.onBeforePaymentCreation(async ({ paymentRequired }) => {
    paymentRequired.extensions ??= {};
    appendPaymentIdentifierToExtensions(paymentRequired.extensions, id);
  });
}

let signature = null; // the last PAYMENT-SIGNATURE the client sent
const recordingFetch = async (request) => {
  signature = request.headers.get("PAYMENT-SIGNATURE") ?? signature;
  return fetch(request);
};
const payingFetch = wrapFetchWithPayment(recordingFetch, client);

async function report(kind, response, sent) {
  const text = await response.text();
  let body = text;
  try {
    body = JSON.parse(text);
  } catch {}
  const header = response.headers.get("PAYMENT-RESPONSE");
  const payment = sent ? decodePaymentSignatureHeader(sent) : null;
  const line = {
    kind,
    status: response.status,
    body,
    paymentResponse: header ? decodePaymentResponseHeader(header) : null,
    paymentId: payment?.extensions?.[PAYMENT_IDENTIFIER]?.info?.id ?? null,
  };
  console.log(JSON.stringify(line));
}

try {
  for (let i = 0; i < (input.payments ?? 1); i++) {
    signature = null;
    const response = await payingFetch(url, init());
    await report("paid", response, signature);
  }
  for (let i = 0; i < (input.replays ?? 0); i++) {
    const replay = init();
    replay.headers["PAYMENT-SIGNATURE"] = signature;
    await report("replay", await fetch(url, replay), signature);
  }
} catch (error) {
  console.log(JSON.stringify({ kind: "error", error: String(error?.message ?? error) }));
  process.exit(1);
}
