//! The `requestHash` that ties one payment to one HTTP request, and the endpoint canonicalisation
//! it depends on.
//!
//! NERO defines `requestHash` as keccak256 over (merchant, chainId, HTTP method, canonical
//! endpoint, timestamp bucket, client nonce) but publishes no byte encoding. This module is the
//! one place the project defines it; nothing else may hash these inputs differently.
//!
//! # Encoding
//!
//! ```text
//! requestHash = keccak256(abi.encode(
//!     address merchant,                          // the 402's payTo
//!     uint256 chainId,                           // the numeric part of "eip155:<id>"
//!     bytes32 keccak256(bytes(UPPERCASE(method))),
//!     bytes32 keccak256(bytes(canonicalEndpoint)),
//!     uint64  floor(unixSeconds / bucketSeconds),
//!     bytes32 clientNonce))
//! ```
//!
//! Six static words, so Solidity can recompute it with one `abi.encode` and no packing
//! ambiguity. The variable-length strings enter as their own hashes for the same reason. The
//! timestamp is in **seconds** (not milliseconds) and the default bucket is
//! [`DEFAULT_BUCKET_SECONDS`]; a request retried within the same bucket with the same nonce yields
//! the same hash, which the settlement contract's global `isSettled` then refuses to pay twice.
//! The client nonce is 32 random bytes chosen by the agent per request: it is what makes two
//! identical requests in the same bucket two distinct payments.
//!
//! # Canonical method
//!
//! The method must be an RFC 9110 token (`GET`, `POST`, `M-SEARCH`, …); it is ASCII-uppercased,
//! so `get` and `GET` hash the same.
//!
//! # Canonical endpoint
//!
//! The endpoint is the resource the merchant advertised: `resource.url` of the 402
//! `PaymentRequired`, verbatim, or the absolute request URL when the 402 names no resource. It
//! takes one of two forms, and the two never canonicalise to each other (a merchant that
//! advertises `/api/llm` is bound to exactly that string, not to whatever origin served it):
//!
//! * **Absolute `http`/`https` URL**, parsed with the WHATWG rules of the `url` crate, then
//!   written as `scheme://host[:port]path[?query]`:
//!   - scheme and host lowercased (international hosts in punycode), default port (80/443)
//!     dropped, IPv6 hosts bracketed;
//!   - userinfo (`user:pass@`) is rejected: credentials have no place in a hashed identifier;
//!   - other schemes (`ftp:`, `data:`, …) are rejected.
//! * **Origin-relative path** starting with a single `/` (as NERO's examples show
//!   `resource.url`), written as `path[?query]`. `//host/...` (scheme-relative) and paths
//!   without a leading slash are rejected as ambiguous.
//!
//! For both forms:
//! - the path has its dot segments resolved (`/a/./b/../c` → `/a/c`) and an empty path becomes
//!   `/`; `\` counts as `/`, as browsers treat it;
//! - percent-encoding is normalised as RFC 3986 §6.2.2 prescribes: escapes of unreserved
//!   characters (`A–Z a–z 0–9 - . _ ~`) are decoded, every other escape has its hex digits
//!   uppercased, a `%` not followed by two hex digits becomes `%25`, and characters the URL
//!   grammar forbids are percent-encoded (UTF-8) by the parser. Reserved characters keep their
//!   encoding (`%2F` stays distinct from `/`);
//! - the fragment is dropped (it never reaches the server);
//! - the query is kept, split on `&` into `key[=value]` pairs, empty pairs removed, each key and
//!   value percent-normalised as above, a pair without `=` given an empty value (`a` → `a=`), and
//!   the pairs sorted by key then value (bytewise, duplicates kept). `+` is kept literally: it is
//!   not assumed to mean a space, because servers disagree. An empty query drops the `?`;
//! - leading or trailing whitespace, and any ASCII control character or space anywhere, is an
//!   error rather than silently trimmed, so two parties cannot hash different strings while
//!   believing they hash the same one.
//!
//! Canonicalisation is idempotent: canonicalising a canonical endpoint returns it unchanged.

use alloy::{
    primitives::{Address, B256, U256, keccak256},
    sol_types::SolValue,
};
use url::Url;

use crate::x402::Reason;

/// Bucket width used when the caller does not choose one: wide enough for clock skew between
/// agent and merchant, narrow enough that a captured payload goes stale quickly.
pub const DEFAULT_BUCKET_SECONDS: u64 = 60;

/// Everything that goes into a `requestHash`, before canonicalisation.
///
/// The strings are kept as given so a caller can build this straight from a 402 answer; they are
/// canonicalised (and may be rejected) when the hash is computed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestHashInput {
    /// The merchant the payment is for (`payTo`); binds the hash to one recipient.
    pub merchant: Address,
    /// EIP-155 chain id of the network the payment settles on.
    pub chain_id: u64,
    /// HTTP method of the paid request, any case.
    pub method: String,
    /// Absolute `http(s)` URL or origin-relative path; see the module docs.
    pub endpoint: String,
    /// Unix time of the request in **seconds**.
    pub timestamp: u64,
    /// Width of a timestamp bucket in seconds; must be non-zero.
    pub bucket_seconds: u64,
    /// Per-request randomness chosen by the agent.
    pub client_nonce: B256,
}

/// Why a `requestHash` could not be computed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestHashError {
    /// The endpoint string is empty.
    #[error("endpoint is empty")]
    EmptyEndpoint,
    /// Whitespace or a control character anywhere, including leading or trailing (never
    /// trimmed, so both parties hash the same string).
    #[error("endpoint contains whitespace or a control character at byte {index}")]
    InvalidCharacter {
        /// Byte offset of the first offending character.
        index: usize,
    },
    /// Neither `http(s)://…` nor a path starting with `/`.
    #[error(
        "endpoint {endpoint:?} is neither an absolute http(s) URL nor a path starting with '/'"
    )]
    NotAbsolute {
        /// The endpoint as given.
        endpoint: String,
    },
    /// Starts with `//`, which could name a host or a path.
    #[error("endpoint {endpoint:?} is scheme-relative ('//'); give a scheme or a single '/'")]
    SchemeRelative {
        /// The endpoint as given.
        endpoint: String,
    },
    /// The WHATWG URL parser refused it.
    #[error("endpoint {endpoint:?} is not a valid URL: {source}")]
    MalformedUrl {
        /// The endpoint as given.
        endpoint: String,
        /// The parser's complaint.
        #[source]
        source: url::ParseError,
    },
    /// An absolute URL of a scheme other than `http` or `https`.
    #[error("endpoint scheme {scheme:?} is not http or https")]
    UnsupportedScheme {
        /// The scheme found.
        scheme: String,
    },
    /// The URL carries `user:password@`.
    #[error("endpoint carries credentials (user:password@), which must not be hashed")]
    Credentials,
    /// The method is empty or has characters outside RFC 9110's token set.
    #[error("HTTP method {method:?} is not an RFC 9110 token")]
    InvalidMethod {
        /// The method as given.
        method: String,
    },
    /// [`RequestHashInput::bucket_seconds`] is zero.
    #[error("timestamp bucket width must be at least one second")]
    ZeroBucket,
}

impl RequestHashError {
    /// The x402 reason a verifier reports when a payload's request binding cannot be formed.
    pub fn reason(&self) -> &'static str {
        Reason::InvalidInnerPayload.as_str()
    }
}

impl RequestHashInput {
    /// Input with the default bucket width ([`DEFAULT_BUCKET_SECONDS`]).
    pub fn new(
        merchant: Address,
        chain_id: u64,
        method: impl Into<String>,
        endpoint: impl Into<String>,
        timestamp: u64,
        client_nonce: B256,
    ) -> Self {
        Self {
            merchant,
            chain_id,
            method: method.into(),
            endpoint: endpoint.into(),
            timestamp,
            bucket_seconds: DEFAULT_BUCKET_SECONDS,
            client_nonce,
        }
    }

    /// Same input with another bucket width.
    pub fn with_bucket_seconds(mut self, bucket_seconds: u64) -> Self {
        self.bucket_seconds = bucket_seconds;
        self
    }

    /// `floor(timestamp / bucket_seconds)`.
    pub fn bucket(&self) -> Result<u64, RequestHashError> {
        self.timestamp.checked_div(self.bucket_seconds).ok_or(RequestHashError::ZeroBucket)
    }

    /// The 192-byte `abi.encode(...)` preimage, exposed so other implementations (Solidity, TS)
    /// can be checked word by word against this one.
    pub fn preimage(&self) -> Result<Vec<u8>, RequestHashError> {
        let method = canonical_method(&self.method)?;
        let endpoint = canonical_endpoint(&self.endpoint)?;
        let bucket = self.bucket()?;
        Ok((
            self.merchant,
            U256::from(self.chain_id),
            keccak256(method.as_bytes()),
            keccak256(endpoint.as_bytes()),
            bucket,
            self.client_nonce,
        )
            .abi_encode())
    }

    /// The `requestHash` passed to `settle(merchant, token, amount, requestHash)`.
    pub fn hash(&self) -> Result<B256, RequestHashError> {
        self.preimage().map(keccak256)
    }
}

/// Uppercased RFC 9110 token; see the module docs.
pub fn canonical_method(method: &str) -> Result<String, RequestHashError> {
    if method.is_empty() || !method.bytes().all(is_tchar) {
        return Err(RequestHashError::InvalidMethod { method: method.to_owned() });
    }
    Ok(method.to_ascii_uppercase())
}

/// Canonical form of an absolute `http(s)` URL or an origin-relative path; the rules are in the
/// module docs.
pub fn canonical_endpoint(endpoint: &str) -> Result<String, RequestHashError> {
    if endpoint.is_empty() {
        return Err(RequestHashError::EmptyEndpoint);
    }
    // The WHATWG parser silently strips these; refusing them keeps "what was hashed" obvious.
    if let Some(index) = endpoint.bytes().position(|b| b <= b' ' || b == 0x7f) {
        return Err(RequestHashError::InvalidCharacter { index });
    }
    let malformed =
        |source| RequestHashError::MalformedUrl { endpoint: endpoint.to_owned(), source };

    if endpoint.starts_with("//") || endpoint.starts_with("/\\") {
        return Err(RequestHashError::SchemeRelative { endpoint: endpoint.to_owned() });
    }
    if endpoint.starts_with('/') {
        // Resolve against a throwaway origin only to reuse the parser's path and query rules.
        let base = Url::parse("http://relative.invalid/").map_err(malformed)?;
        let url = base.join(endpoint).map_err(malformed)?;
        let canonical = path_and_query(&url);
        // "/a/..//b" resolves to "//b", which would read back as a host; refuse it instead.
        if canonical.starts_with("//") {
            return Err(RequestHashError::SchemeRelative { endpoint: endpoint.to_owned() });
        }
        return Ok(canonical);
    }

    let url = match Url::parse(endpoint) {
        Ok(url) => url,
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            return Err(RequestHashError::NotAbsolute { endpoint: endpoint.to_owned() });
        }
        Err(source) => return Err(malformed(source)),
    };
    if !matches!(url.scheme(), "http" | "https") {
        return Err(RequestHashError::UnsupportedScheme { scheme: url.scheme().to_owned() });
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(RequestHashError::Credentials);
    }
    // http(s) URLs always have a host once parsed; an empty one cannot reach this point.
    let host = url.host_str().unwrap_or_default();
    let mut out = format!("{}://{}", url.scheme(), host);
    if let Some(port) = url.port() {
        out.push(':');
        out.push_str(&port.to_string());
    }
    out.push_str(&path_and_query(&url));
    Ok(out)
}

fn path_and_query(url: &Url) -> String {
    let path = url.path();
    let mut out = normalize_percent(if path.is_empty() { "/" } else { path });
    if let Some(query) = url.query().map(normalize_query).filter(|q| !q.is_empty()) {
        out.push('?');
        out.push_str(&query);
    }
    out
}

fn normalize_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (normalize_percent(key), normalize_percent(value))
        })
        .collect();
    pairs.sort();
    let pairs: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.join("&")
}

/// RFC 3986 §6.2.2.1–2: uppercase escapes, decode escaped unreserved characters.
fn normalize_percent(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = bytes
                .get(i + 1)
                .copied()
                .and_then(hex_val)
                .zip(bytes.get(i + 2).copied().and_then(hex_val));
            match hex {
                Some((hi, lo)) => {
                    let decoded = (hi << 4) | lo;
                    if is_unreserved(decoded) {
                        out.push(char::from(decoded));
                    } else {
                        push_escape(&mut out, decoded);
                    }
                    i += 3;
                }
                None => {
                    push_escape(&mut out, b'%');
                    i += 1;
                }
            }
            continue;
        }
        // The parser has already escaped everything non-ASCII, so bytes map to chars 1:1; the
        // escape branch keeps the function total should that ever not hold.
        if b.is_ascii() {
            out.push(char::from(b));
        } else {
            push_escape(&mut out, b);
        }
        i += 1;
    }
    out
}

fn push_escape(out: &mut String, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(byte >> 4)]));
    out.push(char::from(HEX[usize::from(byte & 0x0f)]));
}

fn hex_val(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{address, b256};

    const MERCHANT: Address = address!("0x00000000000000000000000000000000000000aa");
    const NONCE: B256 = b256!("0x0101010101010101010101010101010101010101010101010101010101010101");

    fn base() -> RequestHashInput {
        RequestHashInput::new(MERCHANT, 1689, "get", "/api/llm", 1_700_000_000, NONCE)
    }

    /// Golden vectors. The expected hashes were computed once outside Rust, with a node script
    /// that builds the six 32-byte words by hand (address left-padded, chainId and bucket as
    /// big-endian integers, the two keccak256 string hashes, the nonce) and hashes the 192 bytes
    /// with js-sha3's keccak256. They pin the encoding: a change here is a wire break.
    #[test]
    fn golden_vectors() {
        // bucket = 1_700_000_000 / 60 = 28_333_333; method "GET"; endpoint "/api/llm".
        assert_eq!(base().bucket().unwrap(), 28_333_333);
        assert_eq!(
            base().hash().unwrap(),
            b256!("0x29ec281251f1fffd6d7ab20b5d22f6195fb00ad782c52ce6945a6ce500d887e2")
        );
        // An absolute endpoint that needs canonicalising, with a 300 s bucket on chain 689.
        let input = RequestHashInput::new(
            MERCHANT,
            689,
            "post",
            "HTTPS://API.Example.com:443/v1/%7euser/./chat?b=2&a=1#frag",
            1_700_000_123,
            B256::repeat_byte(0xab),
        )
        .with_bucket_seconds(300);
        assert_eq!(
            canonical_endpoint(&input.endpoint).unwrap(),
            "https://api.example.com/v1/~user/chat?a=1&b=2"
        );
        assert_eq!(input.bucket().unwrap(), 5_666_667);
        assert_eq!(
            input.hash().unwrap(),
            b256!("0xc77e1923a4b4a2cc069b96a7a328d45eaf1b0cc7d42602a10620aa5330accec2")
        );
    }

    #[test]
    fn preimage_layout() {
        let pre = base().preimage().unwrap();
        assert_eq!(pre.len(), 6 * 32);
        assert_eq!(&pre[12..32], MERCHANT.as_slice());
        assert_eq!(U256::from_be_slice(&pre[32..64]), U256::from(1689));
        assert_eq!(&pre[64..96], keccak256("GET").as_slice());
        assert_eq!(&pre[96..128], keccak256("/api/llm").as_slice());
        assert_eq!(U256::from_be_slice(&pre[128..160]), U256::from(28_333_333u64));
        assert_eq!(&pre[160..192], NONCE.as_slice());
    }

    #[test]
    fn every_input_changes_the_hash() {
        let h = base().hash().unwrap();
        let variants = [
            RequestHashInput {
                merchant: address!("0x00000000000000000000000000000000000000ab"),
                ..base()
            },
            RequestHashInput { chain_id: 689, ..base() },
            RequestHashInput { method: "POST".into(), ..base() },
            RequestHashInput { endpoint: "/api/llm2".into(), ..base() },
            RequestHashInput { endpoint: "/api/llm/".into(), ..base() },
            RequestHashInput { endpoint: "/api/llm?x=1".into(), ..base() },
            RequestHashInput { endpoint: "https://m.example/api/llm".into(), ..base() },
            RequestHashInput { timestamp: 1_700_000_000 + 60, ..base() },
            RequestHashInput { bucket_seconds: 120, ..base() },
            RequestHashInput { client_nonce: B256::repeat_byte(2), ..base() },
        ];
        for v in variants {
            assert_ne!(v.hash().unwrap(), h, "{v:?}");
        }
    }

    #[test]
    fn same_bucket_same_hash() {
        // 1_700_000_000 is 20 s into its minute; the bucket runs to +39 s.
        let h = base().hash().unwrap();
        for dt in [0, 1, 39] {
            assert_eq!(
                RequestHashInput { timestamp: 1_700_000_000 + dt, ..base() }.hash().unwrap(),
                h
            );
        }
        assert_ne!(RequestHashInput { timestamp: 1_700_000_040, ..base() }.hash().unwrap(), h);
        assert_ne!(RequestHashInput { timestamp: 1_699_999_979, ..base() }.hash().unwrap(), h);
    }

    #[test]
    fn method_case_is_irrelevant() {
        for m in ["get", "GET", "Get", "gEt"] {
            assert_eq!(
                RequestHashInput { method: m.into(), ..base() }.hash().unwrap(),
                base().hash().unwrap()
            );
        }
        assert_eq!(canonical_method("m-search").unwrap(), "M-SEARCH");
    }

    #[test]
    fn equivalent_urls_canonicalise_equal() {
        let groups: &[&[&str]] = &[
            &[
                "https://api.example.com/v1/chat",
                "HTTPS://API.EXAMPLE.COM/v1/chat",
                "https://api.example.com:443/v1/chat",
                "https://api.example.com/v1/./chat",
                "https://api.example.com/v1/x/../chat",
                "https://api.example.com/v1/chat#section",
                "https://api.example.com/v1/chat?",
                "https://api.example.com/%76%31/%63hat",
                "https://api.example.com/v1\\chat",
            ],
            &["http://example.com", "http://example.com/", "http://EXAMPLE.com:80/"],
            &["http://example.com:8080/a", "HTTP://example.com:8080/a"],
            &[
                "https://x.test/p?b=2&a=1",
                "https://x.test/p?a=1&b=2",
                "https://x.test/p?a=1&&b=2&",
                "https://x.test/p?%61=1&b=%32",
            ],
            &["https://x.test/p?flag", "https://x.test/p?flag="],
            &["https://x.test/a%2fb", "https://x.test/a%2Fb"],
            &["https://x.test/caf%c3%a9", "https://x.test/café", "https://x.test/caf%C3%A9"],
            &["https://bücher.example/", "https://xn--bcher-kva.example/"],
            &["https://[::1]:443/", "https://[0:0:0:0:0:0:0:1]/"],
            &["/api/llm", "/api/./llm", "/api/llm#x", "/api/x/../llm", "/%61pi/llm"],
            &["/", "/.", "/.."],
            &["/search?q=a+b&lang=en", "/search?lang=en&q=a+b"],
        ];
        for group in groups {
            let first = canonical_endpoint(group[0]).unwrap();
            for url in &group[1..] {
                assert_eq!(canonical_endpoint(url).unwrap(), first, "{url} vs {}", group[0]);
            }
        }
    }

    #[test]
    fn distinct_urls_stay_distinct() {
        let distinct = [
            "https://x.test/a",
            "http://x.test/a",
            "https://x.test:8443/a",
            "https://y.test/a",
            "https://x.test/A",
            "https://x.test/a/",
            "https://x.test/a%2Fb",
            "https://x.test/a/b",
            "https://x.test/a?q=1",
            "https://x.test/a?q=1&q=1",
            "https://x.test/a?q=a+b",
            "https://x.test/a?q=a%20b",
            "https://x.test/a?q=a%2Bb",
            "/a",
        ];
        let canon: Vec<String> = distinct.iter().map(|u| canonical_endpoint(u).unwrap()).collect();
        for i in 0..canon.len() {
            for j in i + 1..canon.len() {
                assert_ne!(canon[i], canon[j], "{} vs {}", distinct[i], distinct[j]);
            }
        }
    }

    #[test]
    fn canonical_forms() {
        for (input, want) in [
            (
                "HTTPS://API.Example.com:443/v1/%7euser/./chat?b=2&a=1#frag",
                "https://api.example.com/v1/~user/chat?a=1&b=2",
            ),
            ("http://example.com", "http://example.com/"),
            ("https://x.test/a b".replace(' ', "%20").as_str(), "https://x.test/a%20b"),
            ("https://x.test/%zz%4", "https://x.test/%25zz%254"),
            ("https://x.test/%3a%3A", "https://x.test/%3A%3A"),
            ("https://x.test/p?z&y=2&y=1", "https://x.test/p?y=1&y=2&z="),
            ("https://x.test/{x}", "https://x.test/%7Bx%7D"),
            ("/api/llm", "/api/llm"),
            ("/api/llm?b=1&a", "/api/llm?a=&b=1"),
        ] {
            assert_eq!(canonical_endpoint(input).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn canonicalisation_is_idempotent() {
        for input in [
            "HTTPS://API.Example.com:443/v1/%7euser/./chat?b=2&a=1#frag",
            "https://x.test/%zz%4?%zz=%7e",
            "https://x.test/caf%c3%a9?q=%e2%82%ac&a",
            "https://bücher.example:8080/a/../b/",
            "/api/llm?b=1&a",
            "https://x.test/{x}|^`?'\"=<>",
        ] {
            let once = canonical_endpoint(input).unwrap();
            assert_eq!(canonical_endpoint(&once).unwrap(), once, "{input}");
        }
    }

    #[test]
    fn malformed_endpoints_are_typed_errors() {
        use RequestHashError as E;
        type Case = (&'static str, fn(&E) -> bool);
        let cases: &[Case] = &[
            ("", |e| matches!(e, E::EmptyEndpoint)),
            (" /api", |e| matches!(e, E::InvalidCharacter { index: 0 })),
            ("/api ", |e| matches!(e, E::InvalidCharacter { index: 4 })),
            ("/a\tb", |e| matches!(e, E::InvalidCharacter { index: 2 })),
            ("/a\nb", |e| matches!(e, E::InvalidCharacter { .. })),
            ("https://x.test/\u{7f}", |e| matches!(e, E::InvalidCharacter { .. })),
            ("api/llm", |e| matches!(e, E::NotAbsolute { .. })),
            ("example.com/api", |e| matches!(e, E::NotAbsolute { .. })),
            ("?a=1", |e| matches!(e, E::NotAbsolute { .. })),
            ("//example.com/api", |e| matches!(e, E::SchemeRelative { .. })),
            ("/\\example.com/api", |e| matches!(e, E::SchemeRelative { .. })),
            ("/a/..//b", |e| matches!(e, E::SchemeRelative { .. })),
            ("ftp://example.com/x", |e| matches!(e, E::UnsupportedScheme { .. })),
            ("data:text/plain,hi", |e| matches!(e, E::UnsupportedScheme { .. })),
            ("mailto:a@b.c", |e| matches!(e, E::UnsupportedScheme { .. })),
            ("https://user:pw@x.test/", |e| matches!(e, E::Credentials)),
            ("https://user@x.test/", |e| matches!(e, E::Credentials)),
            ("https://", |e| matches!(e, E::MalformedUrl { .. })),
            ("https://x.test:99999/", |e| matches!(e, E::MalformedUrl { .. })),
            ("https://[::1/", |e| matches!(e, E::MalformedUrl { .. })),
            ("http://exa%mple.com/", |e| matches!(e, E::MalformedUrl { .. })),
            ("https://x..test:abc/", |e| matches!(e, E::MalformedUrl { .. })),
        ];
        for (input, check) in cases {
            match canonical_endpoint(input) {
                Err(e) => {
                    assert!(check(&e), "{input:?} gave {e:?}");
                    assert_eq!(e.reason(), "invalid_inner_payload");
                }
                Ok(ok) => panic!("{input:?} accepted as {ok:?}"),
            }
        }
    }

    #[test]
    fn bad_method_and_bucket_are_typed_errors() {
        for m in ["", "GE T", "GET\n", "G(ET)", "GÉT", "a/b"] {
            let err = RequestHashInput { method: m.into(), ..base() }.hash().unwrap_err();
            assert!(matches!(err, RequestHashError::InvalidMethod { .. }), "{m:?}: {err:?}");
        }
        let err = base().with_bucket_seconds(0).hash().unwrap_err();
        assert!(matches!(err, RequestHashError::ZeroBucket));
    }

    #[test]
    fn arbitrary_input_never_panics() {
        // A small deterministic fuzz: every byte string built from a hostile alphabet either
        // canonicalises idempotently or is rejected with a typed error.
        let alphabet: &[&str] = &[
            "h", "ttp", "s", ":", "/", "//", "%", "2", "f", "?", "&", "=", "#", "[", "]", "@", ".",
            "..", "\\", "é", " ", "x.test", ":8", "\0",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            let mut s = String::new();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 12) as usize;
            let mut x = seed;
            for _ in 0..len {
                s.push_str(alphabet[(x % alphabet.len() as u64) as usize]);
                x = x.rotate_right(5).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            }
            if let Ok(c) = canonical_endpoint(&s) {
                assert_eq!(canonical_endpoint(&c).unwrap(), c, "not idempotent for {s:?}");
            }
        }
    }
}
