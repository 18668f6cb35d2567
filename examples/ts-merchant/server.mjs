// An @x402/express merchant that accepts aa-native (ERC-4337 smart accounts, through our
// facilitator) beside x402's own `exact` (EIP-3009), on one route: the client picks.
//
//   FACILITATOR_URL=http://127.0.0.1:8402 PAY_TO=0x… NETWORK=eip155:31337 \
//   AA_NATIVE_ASSET=0x… (USDT) EXACT_ASSET=0x… (USDC) node examples/ts-merchant/server.mjs
//
// Every value is printed by `x402-aa devnet up` (text or --json). PORT defaults to 4021; set it
// to 0 for any free port (the chosen URL is printed as `listening <url>` on stdout).
import express from "express";
import { paymentMiddleware, x402ResourceServer } from "@x402/express";
import { HTTPFacilitatorClient } from "@x402/core/server";
import { ExactEvmScheme } from "@x402/evm/exact/server";
import { AaNativeServerScheme } from "./aa-native.mjs";

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`${name} is required (see x402-aa devnet up)`);
  return value;
};
const network = env("NETWORK", "eip155:31337");
const payTo = env("PAY_TO");
const amount = env("PRICE_ATOMIC", "10000"); // 0.01 of a 6-decimal token

const server = new x402ResourceServer(new HTTPFacilitatorClient({ url: env("FACILITATOR_URL") }))
  .register(network, new ExactEvmScheme())
  .register(network, new AaNativeServerScheme());

const app = express();
app.use(
  paymentMiddleware(
    {
      "GET /joke": {
        accepts: [
          {
            scheme: "exact",
            network,
            payTo,
            price: {
              amount,
              asset: env("EXACT_ASSET"),
              extra: {
                name: env("EXACT_EIP712_NAME", "Devnet USD Coin"),
                version: env("EXACT_EIP712_VERSION", "2"),
              },
            },
          },
          { scheme: "aa-native", network, payTo, price: { amount, asset: env("AA_NATIVE_ASSET") } },
        ],
        description: "one joke",
        mimeType: "application/json",
      },
    },
    server,
  ),
);
app.get("/joke", (_req, res) => res.json({ joke: "A smart account walks into a bar. It pays." }));

const listener = app.listen(Number(env("PORT", "4021")), "127.0.0.1", () => {
  console.log(`listening http://127.0.0.1:${listener.address().port}`);
});
