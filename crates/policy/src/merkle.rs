//! The merchant allowlist: a Merkle tree over merchant addresses, checked on-chain with OpenZeppelin's
//! `MerkleProof.verify` (sorted-pair keccak). Leaf = `keccak256(abi.encodePacked(merchant))`; a 20-byte
//! leaf preimage can never be confused with a 64-byte inner node.

use alloy::primitives::{Address, B256, keccak256};

/// A built allowlist. Leaves are sorted and de-duplicated, so the root depends only on the set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerchantTree {
    merchants: Vec<Address>,
    /// `layers[0]` are the leaves, the last layer is `[root]`.
    layers: Vec<Vec<B256>>,
}

/// The leaf of `merchant`: `keccak256(abi.encodePacked(merchant))`, as the contract hashes it.
pub fn leaf(merchant: Address) -> B256 {
    keccak256(merchant.as_slice())
}

fn hash_pair(a: B256, b: B256) -> B256 {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(lo.as_slice());
    buf[32..].copy_from_slice(hi.as_slice());
    keccak256(buf)
}

impl MerchantTree {
    /// `None` for an empty list: "any merchant" is the zero root, never an empty tree.
    pub fn new(merchants: impl IntoIterator<Item = Address>) -> Option<Self> {
        let mut merchants: Vec<Address> = merchants.into_iter().collect();
        merchants.sort();
        merchants.dedup();
        if merchants.is_empty() {
            return None;
        }
        let mut leaves: Vec<B256> = merchants.iter().map(|m| leaf(*m)).collect();
        leaves.sort();
        let mut layers = vec![leaves];
        while layers.last().is_some_and(|l| l.len() > 1) {
            let prev = layers.last().map(Vec::as_slice).unwrap_or_default();
            let next: Vec<B256> = prev
                .chunks(2)
                .map(|pair| if pair.len() == 2 { hash_pair(pair[0], pair[1]) } else { pair[0] })
                .collect();
            layers.push(next);
        }
        Some(Self { merchants, layers })
    }

    /// The root a grant's `merchantRoot` must equal.
    pub fn root(&self) -> B256 {
        self.layers.last().and_then(|l| l.first()).copied().unwrap_or_default()
    }

    /// The merchants, sorted and de-duplicated.
    pub fn merchants(&self) -> &[Address] {
        &self.merchants
    }

    /// Proof for `merchant`, or `None` when it is not on the list.
    pub fn proof(&self, merchant: Address) -> Option<Vec<B256>> {
        let target = leaf(merchant);
        let mut index = self.layers[0].iter().position(|l| *l == target)?;
        let mut proof = Vec::new();
        for layer in &self.layers[..self.layers.len() - 1] {
            let sibling = index ^ 1;
            if let Some(node) = layer.get(sibling) {
                proof.push(*node);
            }
            index /= 2;
        }
        Some(proof)
    }

    /// Same rule as the contract, so the SDK can refuse before signing.
    pub fn verify(root: B256, merchant: Address, proof: &[B256]) -> bool {
        proof.iter().fold(leaf(merchant), |acc, node| hash_pair(acc, *node)) == root
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_member_proves_and_outsiders_do_not() {
        for n in 1..=9u8 {
            let merchants: Vec<Address> = (1..=n).map(Address::repeat_byte).collect();
            let tree = MerchantTree::new(merchants.clone()).unwrap();
            for m in &merchants {
                let proof = tree.proof(*m).unwrap();
                assert!(MerchantTree::verify(tree.root(), *m, &proof), "n={n} m={m}");
            }
            let outsider = Address::repeat_byte(0xee);
            assert!(tree.proof(outsider).is_none());
            let proof0 = tree.proof(merchants[0]).unwrap();
            assert!(!MerchantTree::verify(tree.root(), outsider, &proof0));
        }
    }

    #[test]
    fn single_merchant_root_is_its_leaf_and_order_does_not_matter() {
        let m = Address::repeat_byte(7);
        let tree = MerchantTree::new([m]).unwrap();
        assert_eq!(tree.root(), leaf(m));
        assert_eq!(tree.proof(m).unwrap(), Vec::<B256>::new());
        let a = MerchantTree::new([Address::repeat_byte(1), Address::repeat_byte(2), m]).unwrap();
        let b =
            MerchantTree::new([m, Address::repeat_byte(2), Address::repeat_byte(1), m]).unwrap();
        assert_eq!(a.root(), b.root());
        assert!(MerchantTree::new([]).is_none());
    }
}
