// The official x402 TypeScript client (@x402/fetch + @x402/evm `exact`) paying one URL with a
// plain key, configured only with what `x402-aa devnet up` prints: `node ts-client.mjs <url>`
// with PAYER_KEY (a funded key), NETWORK and ASSET (the devnet's USDC, which the client's spend
// controls must allow: it is not one of its built-in assets). Prints one JSON line:
// { status, body, paymentResponse } (the decoded PAYMENT-RESPONSE, or null).
import { x402Client, x402HTTPClient, wrapFetchWithPayment } from "@x402/fetch";
import { ExactEvmScheme } from "@x402/evm/exact/client";
import { privateKeyToAccount } from "viem/accounts";

const url = process.argv[2];
const network = process.env.NETWORK ?? "eip155:31337";
const client = x402Client.fromConfig({
  schemes: [{ network, client: new ExactEvmScheme(privateKeyToAccount(process.env.PAYER_KEY)) }],
  spendControls: { allowedAssets: [{ network, asset: process.env.ASSET }] },
});
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
