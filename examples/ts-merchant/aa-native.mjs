// The server side of NERO 402's aa-native scheme for @x402/core's x402ResourceServer: what a
// TypeScript merchant adds to accept payments from ERC-4337 smart accounts through our
// facilitator. The facilitator verifies and settles; this class only shapes the requirements.

export class AaNativeServerScheme {
  scheme = "aa-native";
  // aa-native moves tokens with the settlement contract, not EIP-3009 or Permit2.
  defaultAssetTransferMethod = "default";
  paymentFlows = { default: { supported: ["authorization"], default: "authorization" } };

  // Prices are given in atomic units of an ERC-20: { amount: "10000", asset: "0x…" }.
  async parsePrice(price, network) {
    if (typeof price !== "object" || !price?.amount || !price?.asset) {
      throw new Error(`aa-native on ${network} needs a price { amount, asset } in atomic units`);
    }
    return { amount: String(price.amount), asset: price.asset, extra: price.extra ?? {} };
  }

  // The facilitator's /supported names its settlement contract and EntryPoint for the network:
  // clients build their UserOperation against exactly these.
  async enhancePaymentRequirements(requirements, supportedKind) {
    return { ...requirements, extra: { ...supportedKind.extra, ...requirements.extra } };
  }
}
