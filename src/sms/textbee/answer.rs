//! What TextBee answered, read safely: the batch id of an accepted send,
//! and the gateway's explanation of a refusal fit for a log.

use serde_json::Value;

use crate::sms::http::loggable;

/// TextBee answers a send with `{"data": {"smsBatchId": "…", …}}`; other
/// shapes (older or self-hosted servers) are accepted without an id.
pub(super) fn batch_id(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let id = value
        .pointer("/data/smsBatchId")
        .or_else(|| value.get("smsBatchId"))?;
    match id {
        Value::String(id) => Some(id.clone()),
        Value::Number(id) => Some(id.to_string()),
        _ => None,
    }
}

/// The gateway's own explanation: TextBee's `error` (or NestJS's
/// `message`), else the raw text; made safe for a log line (one line,
/// shortened, runs of 4+ digits hidden in case TextBee echoed the number
/// or the message, and so the code, back).
pub(super) fn gateway_message(body: &[u8]) -> String {
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(value) => ["/error", "/message", "/data/error", "/data/message"]
            .iter()
            .find_map(|pointer| match value.pointer(pointer)? {
                Value::String(text) => Some(text.clone()),
                Value::Array(items) => Some(
                    items
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
                _ => None,
            })
            .unwrap_or_else(|| value.to_string()),
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    loggable(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_id_is_read_from_textbees_answer() {
        let body = br#"{"data":{"success":true,"message":"SMS added to queue for processing","smsBatchId":"6650f0c2","recipientCount":1}}"#;
        assert_eq!(batch_id(body).as_deref(), Some("6650f0c2"));
        assert_eq!(batch_id(br#"{"data":{"success":true}}"#), None);
        assert_eq!(batch_id(b"OK"), None);
        assert_eq!(batch_id(b""), None);
    }

    #[test]
    fn gateway_message_prefers_textbees_error_field() {
        assert_eq!(
            gateway_message(br#"{"success":false,"error":"Invalid recipients"}"#),
            "Invalid recipients"
        );
        assert_eq!(
            gateway_message(br#"{"statusCode":400,"message":["message should not be empty","x"]}"#),
            "message should not be empty; x"
        );
        assert_eq!(gateway_message(b"Bad Gateway\r\n"), "Bad Gateway");
        assert_eq!(gateway_message(b""), "(no message)");
    }

    #[test]
    fn gateway_message_hides_echoed_numbers_and_codes() {
        let message = gateway_message(
            br#"{"error":"cannot send 'Your code is 042917' to +14155550123 (HTTP 503)"}"#,
        );
        assert_eq!(
            message,
            "cannot send 'Your code is ######' to +########### (HTTP 503)"
        );
    }
}
