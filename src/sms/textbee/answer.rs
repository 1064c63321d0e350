//! What TextBee answered, read safely: a capped body, the batch id of an
//! accepted send, and the gateway's explanation of a refusal fit for a log.

use reqwest::Response;
use serde_json::Value;

/// Most of an answer's body that is read: enough for any JSON TextBee
/// sends, little enough that a broken proxy cannot fill memory.
const MAX_BODY_BYTES: usize = 16 * 1024;
/// Longest gateway message put in a log line.
const MAX_LOGGED_MESSAGE_CHARS: usize = 200;

/// Reads at most [`MAX_BODY_BYTES`] of the body; a broken body reads as what arrived.
pub(super) async fn read_capped(mut response: Response) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_BODY_BYTES - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == MAX_BODY_BYTES {
            break;
        }
    }
    body
}

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

/// The gateway's own explanation, fit for a log line: TextBee's `error`
/// (or NestJS's `message`), else the raw text; one line, shortened, and with
/// every run of 4+ digits hidden in case the gateway echoed the number or
/// the message (and so the code) back.
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
    let text = text.trim();
    if text.is_empty() {
        return "(no message)".into();
    }
    // Mask the whole text first, then cut: cutting first could split a code
    // at the limit and leave its first digits unmasked.
    let mut clean = String::with_capacity(text.len());
    let mut digit_run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= 4 {
            out.push_str(&"#".repeat(run.len()));
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            digit_run.push(c);
            continue;
        }
        flush(&mut digit_run, &mut clean);
        clean.push(if c.is_control() { ' ' } else { c });
    }
    flush(&mut digit_run, &mut clean);
    if clean.chars().count() > MAX_LOGGED_MESSAGE_CHARS {
        clean = clean.chars().take(MAX_LOGGED_MESSAGE_CHARS).collect();
        clean.push('…');
    }
    clean
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

    #[test]
    fn a_code_at_the_cut_is_masked_whole() {
        let body = format!("{}042917 more", "x".repeat(MAX_LOGGED_MESSAGE_CHARS - 2));
        let message = gateway_message(body.as_bytes());
        assert!(message.ends_with("##…"), "{message}");
        assert!(!message.contains("04"), "{message}");
    }

    #[test]
    fn gateway_message_is_one_short_line() {
        let long = format!("line one\nline two {}", "x".repeat(500));
        let message = gateway_message(long.as_bytes());
        assert!(!message.contains('\n'), "{message}");
        assert_eq!(message.chars().count(), MAX_LOGGED_MESSAGE_CHARS + 1);
        assert!(message.ends_with('…'));
    }
}
