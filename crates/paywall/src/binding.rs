//! The request binding: an aa-native payment pays for one request, not for whatever resource of the
//! same merchant at the same price it is presented to.
//!
//! The requestHash inside the signed op binds the merchant, the chain, the HTTP method, the resource,
//! a time bucket and the payer's nonce, but the facilitator only sees the hash. A payer that
//! discloses what it hashed (`payload.request`, [`x402_aa::x402::RequestBinding`]) lets this paywall
//! check it: the binding must hash to the requestHash (for the accepted `payTo` and chain), name this
//! request's method, and name the resource this route advertises, compared by canonical path and
//! query (the origin is not compared: a proxy may rewrite it, and it is the same merchant's resource
//! either way). A payment made for `GET /a` presented at `GET /b` is refused here, before the
//! facilitator is asked, with `request_mismatch`.
//!
//! Payers that predate the binding (NERO's payload has no such field) send none; a layer may accept
//! them ([`crate::PaywallLayer`]'s default) or refuse them
//! ([`crate::PaywallLayer::require_request_binding`]). Anything that is not a readable aa-native
//! payment is left to x402-axum and the facilitator.

use axum::{body::Body, extract::Request, http::HeaderValue, response::Response};
use url::Url;
use x402_aa::{
    canonical_endpoint, canonical_method,
    x402::{
        PAYMENT_REQUIRED_HEADER, PAYMENT_SIGNATURE_HEADER, Reason, decode_header_bytes,
        decode_payment_signature, encode_header,
    },
};

/// Why the payment does not pay for this request, or `None` when it does (or is not ours to judge).
pub(crate) fn mismatch(
    req: &Request,
    fixed_resource: Option<&Url>,
    require: bool,
) -> Option<String> {
    let header = req.headers().get(PAYMENT_SIGNATURE_HEADER)?;
    let envelope = decode_payment_signature(header.as_bytes()).ok()?;
    let binding = match envelope.payload.payload.check_request_binding(envelope.accepted.chain_id) {
        Err(e) => return Some(e.to_string()),
        Ok(None) if require => {
            return Some("the payment does not disclose the request it was made for".into());
        }
        Ok(None) => return None,
        Ok(Some(binding)) => binding,
    };
    let paid_method = canonical_method(&binding.method).ok()?;
    if paid_method != req.method().as_str().to_ascii_uppercase() {
        return Some(format!("paid for a {paid_method} request, this is {}", req.method()));
    }
    let paid = canonical_endpoint(&binding.endpoint).map(|e| path_and_query(&e)).ok()?;
    let served = match fixed_resource {
        Some(url) => canonical_endpoint(url.as_str()),
        None => canonical_endpoint(req.uri().path_and_query().map_or("/", |p| p.as_str())),
    }
    .map(|e| path_and_query(&e))
    .ok()?;
    (paid != served).then(|| format!("paid for resource {paid}, this is {served}"))
}

/// `/path?query` of a canonical endpoint (absolute URLs lose their origin).
fn path_and_query(canonical: &str) -> String {
    match canonical.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/".to_owned(), |at| rest[at..].to_owned()),
        None => canonical.to_owned(),
    }
}

/// The request without its payment, for x402-axum to answer with its ordinary `402`.
pub(crate) fn without_payment(mut req: Request) -> Request {
    req.headers_mut().remove(PAYMENT_SIGNATURE_HEADER);
    req
}

/// x402-axum's `402` for the unpaid request, with `error` naming the mismatch.
pub(crate) fn refusal(mut response: Response, message: &str) -> Response {
    let error = format!("{}: {message}", Reason::RequestMismatch.as_str());
    let required = response
        .headers()
        .get(PAYMENT_REQUIRED_HEADER)
        .and_then(|value| decode_header_bytes(value.as_bytes()).ok())
        .and_then(|json| serde_json::from_slice::<serde_json::Value>(&json).ok());
    if let Some(mut required) = required
        && let Some(object) = required.as_object_mut()
    {
        object.insert("error".into(), error.into());
        if let Some(value) =
            encode_header(&required).ok().and_then(|v| HeaderValue::from_str(&v).ok())
        {
            response.headers_mut().insert(PAYMENT_REQUIRED_HEADER, value);
            // finish_response writes the header's JSON into the (empty) body.
            *response.body_mut() = Body::empty();
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use axum::http::Method;

    use super::*;

    #[test]
    fn path_and_query_drops_only_the_origin() {
        assert_eq!(path_and_query("http://api.example:8080/a/b?x=1"), "/a/b?x=1");
        assert_eq!(path_and_query("https://api.example"), "/");
        assert_eq!(path_and_query("/a?x="), "/a?x=");
    }

    #[test]
    fn methods_compare_canonically() {
        assert_eq!(canonical_method("get").unwrap(), Method::GET.as_str());
    }
}
