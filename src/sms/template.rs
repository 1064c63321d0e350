//! One SMS template: its placeholders checked once, rendered per code.

use std::time::Duration;

use thiserror::Error;

use crate::domain::OtpCode;

/// Placeholders a template may use.
const PLACEHOLDERS: [&str; 4] = ["code", "minutes", "seconds", "app"];

/// A validated message template (`OTP_MESSAGE_TEMPLATE`, or one locale's
/// entry of `OTP_MESSAGE_TEMPLATES_FILE`). The lines appended after it
/// (WebOTP, Android SMS Retriever) are [`super::MessageTemplates`]' job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageTemplate {
    template: String,
}

/// Why a template was refused at startup.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TemplateError {
    /// `{name}` is not one of the known placeholders.
    #[error("unknown placeholder {{{0}}}; allowed: {{code}}, {{minutes}}, {{seconds}}, {{app}}")]
    UnknownPlaceholder(String),
    /// A `{` without its `}`.
    #[error("has a `{{` without a closing `}}`")]
    Unclosed,
    /// Without `{code}` the user would never see the code.
    #[error("must contain {{code}}")]
    MissingCode,
}

impl MessageTemplate {
    /// The text used when `OTP_MESSAGE_TEMPLATE` is unset.
    pub const DEFAULT: &'static str =
        "Your {app} verification code is {code}. It expires in {minutes} min. Do not share it.";

    /// Checks that every placeholder is known and `{code}` is there.
    pub fn new(template: &str) -> Result<Self, TemplateError> {
        let mut rest = template;
        let mut has_code = false;
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            let close = after.find('}').ok_or(TemplateError::Unclosed)?;
            let name = &after[..close];
            if !PLACEHOLDERS.contains(&name) {
                return Err(TemplateError::UnknownPlaceholder(name.to_owned()));
            }
            has_code |= name == "code";
            rest = &after[close + 1..];
        }
        if !has_code {
            return Err(TemplateError::MissingCode);
        }
        Ok(Self {
            template: template.to_owned(),
        })
    }

    /// The message for `code`, valid for `ttl`, from app `app_name`.
    pub fn render(&self, code: &OtpCode, ttl: Duration, app_name: &str) -> String {
        self.render_spoken(code.expose(), ttl, app_name)
    }

    /// The message with `code` as given (e.g. spelled digit by digit for
    /// a voice call), valid for `ttl`, from app `app_name`.
    pub fn render_spoken(&self, code: &str, ttl: Duration, app_name: &str) -> String {
        let seconds = ttl.as_secs();
        let minutes = seconds.div_ceil(60);
        // One pass over the template, so a value that itself looks like a
        // placeholder (an app name "{code}") is inserted literally.
        let mut text = String::with_capacity(self.template.len() + 16);
        let mut rest = self.template.as_str();
        while let Some(open) = rest.find('{') {
            text.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            // `new` checked that every `{` is closed by a known placeholder.
            let close = after.find('}').unwrap_or(after.len());
            match &after[..close] {
                "code" => text.push_str(code),
                "minutes" => text.push_str(&minutes.to_string()),
                "seconds" => text.push_str(&seconds.to_string()),
                "app" => text.push_str(app_name),
                _ => {}
            }
            rest = after.get(close + 1..).unwrap_or("");
        }
        text.push_str(rest);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code() -> OtpCode {
        OtpCode::parse("042917", 6).expect("valid")
    }

    #[test]
    fn default_template_renders_every_placeholder() {
        let template = MessageTemplate::new(MessageTemplate::DEFAULT).expect("valid");
        assert_eq!(
            template.render(&code(), Duration::from_secs(120), "Acme"),
            "Your Acme verification code is 042917. It expires in 2 min. Do not share it."
        );
    }

    #[test]
    fn seconds_and_rounded_up_minutes() {
        let template = MessageTemplate::new("{code} {minutes}m {seconds}s").expect("valid");
        assert_eq!(
            template.render(&code(), Duration::from_secs(90), "x"),
            "042917 2m 90s"
        );
    }

    #[test]
    fn bad_templates_are_refused() {
        assert_eq!(
            MessageTemplate::new("{code} {user}"),
            Err(TemplateError::UnknownPlaceholder("user".into()))
        );
        assert_eq!(MessageTemplate::new("{code"), Err(TemplateError::Unclosed));
        assert_eq!(
            MessageTemplate::new("hello"),
            Err(TemplateError::MissingCode)
        );
    }

    #[test]
    fn values_containing_braces_are_not_expanded_again() {
        let template = MessageTemplate::new("{app}: {code}").expect("valid");
        assert_eq!(
            template.render(&code(), Duration::from_secs(60), "{code}"),
            "{code}: 042917"
        );
    }
}
