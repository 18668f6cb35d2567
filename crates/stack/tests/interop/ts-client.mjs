// The official x402 TypeScript client (@x402/fetch + @x402/evm `exact`) paying one URL with a
// plain key, as an x402 user would: `node ts-client.mjs <url>` with PAYER_KEY set. Prints one
// JSON line: { status, body, paymentResponse } (the decoded PAYMENT-RESPONSE, or null).
import { x402Client, x402HTTPClient, wrapFetchWithPayment } from "@x402/fetch";
import { ExactEvmScheme } from "@x402/evm/exact/client";
import { privateKeyToAccount } from "viem/accounts";

const url = process.argv[2];
const client = new x402Client();
client.register("eip155:*", new ExactEvmScheme(privateKeyToAccount(process.env.PAYER_KEY)));
const response = await wrapFetchWithPayment(fetch, client)(url, { method: "GET" });
const text = await response.text();
let paymentResponse = null;
try {
  paymentResponse = new x402HTTPClient(client).getPaymentSettleResponse((name) =>
    response.headers.get(name),
  );
} catch {
  // No (readable) PAYMENT-RESPONSE: the caller sees null.
}
console.log(JSON.stringify({ status: response.status, body: text, paymentResponse }));
