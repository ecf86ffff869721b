//! What a token holds: the original reasoning as a JSON value, tagged with the place it came
//! from, so a token lifted from one place (say a chat message) and pasted into another (an
//! Anthropic block) is refused rather than forwarded upstream as a malformed body.

use serde_json::Value;

use crate::error::{DialectError, TokenFault};
use crate::seal::Sealer;

/// Where a payload came from and may go back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The reasoning fields of a chat message: an object with some of `reasoning_content`,
    /// `reasoning`, `reasoning_details`.
    ChatFields,
    /// An inline `<think>` block: a string, tags included.
    Inline,
    /// A Responses `reasoning` item.
    ResponsesItem,
    /// An Anthropic `thinking` block.
    MessagesBlock,
}

impl Kind {
    fn tag(self) -> &'static str {
        match self {
            Kind::ChatFields => "chat",
            Kind::Inline => "inline",
            Kind::ResponsesItem => "responses",
            Kind::MessagesBlock => "messages",
        }
    }
}

/// Seals `value` as a payload of `kind` for `account_id`.
pub(crate) fn seal(
    sealer: &Sealer,
    account_id: &str,
    kind: Kind,
    value: &Value,
) -> Result<String, DialectError> {
    // Written by hand rather than through `json!` so the (possibly large) value is not cloned.
    let mut bytes = Vec::with_capacity(64);
    bytes.extend_from_slice(b"{\"k\":\"");
    bytes.extend_from_slice(kind.tag().as_bytes());
    bytes.extend_from_slice(b"\",\"v\":");
    // Serializing a `Value` to memory cannot fail (its keys are strings).
    serde_json::to_writer(&mut bytes, value).map_err(|_| DialectError::PayloadTooLarge {
        size: 0,
        limit: crate::MAX_PAYLOAD_BYTES,
    })?;
    bytes.push(b'}');
    sealer.seal(account_id, &bytes)
}

/// Opens a token found at `at` in a request, expecting a payload of `kind`.
pub(crate) fn open(
    sealer: &Sealer,
    account_id: &str,
    kind: Kind,
    token: &str,
    at: &dyn Fn() -> String,
) -> Result<Value, DialectError> {
    let fault = |fault| DialectError::TamperedToken { at: at(), fault };
    let bytes = sealer.open(account_id, token).map_err(|e| match e {
        DialectError::InvalidToken(f) => fault(f),
        other => other,
    })?;
    let Ok(Value::Object(mut envelope)) = serde_json::from_slice::<Value>(&bytes) else {
        return Err(fault(TokenFault::Payload));
    };
    if envelope.get("k").and_then(Value::as_str) != Some(kind.tag()) {
        return Err(fault(TokenFault::Payload));
    }
    let value = envelope
        .remove("v")
        .ok_or_else(|| fault(TokenFault::Payload))?;
    let well_formed = match kind {
        Kind::ChatFields => value.is_object(),
        Kind::Inline => value.is_string(),
        Kind::ResponsesItem | Kind::MessagesBlock => value.is_object(),
    };
    if well_formed {
        Ok(value)
    } else {
        Err(fault(TokenFault::Payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payload_of_another_kind_is_refused() {
        let s = Sealer::new([3; 32]);
        let token = seal(&s, "a", Kind::ChatFields, &json!({"reasoning": "x"})).unwrap();
        let at = || "here".to_owned();
        assert_eq!(
            open(&s, "a", Kind::ChatFields, &token, &at).unwrap(),
            json!({"reasoning": "x"})
        );
        assert_eq!(
            open(&s, "a", Kind::MessagesBlock, &token, &at),
            Err(DialectError::TamperedToken {
                at: "here".into(),
                fault: TokenFault::Payload
            })
        );
    }
}
