//! The SMS text around the code.

use std::time::Duration;

use thiserror::Error;

use crate::domain::OtpCode;

/// Placeholders a template may use.
const PLACEHOLDERS: [&str; 4] = ["code", "minutes", "seconds", "app"];

/// A validated message template (`OTP_MESSAGE_TEMPLATE`), with the app name
/// and optional WebOTP domain it is rendered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageTemplate {
    template: String,
    app_name: String,
    webotp_domain: Option<String>,
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

    /// Checks `template` and binds the app name and WebOTP domain.
    pub fn new(
        template: &str,
        app_name: &str,
        webotp_domain: Option<&str>,
    ) -> Result<Self, TemplateError> {
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
            app_name: app_name.to_owned(),
            webotp_domain: webotp_domain.map(str::to_owned),
        })
    }

    /// The message for `code`, valid for `ttl`. With a WebOTP domain, the
    /// last line is `@<domain> #<code>` so browsers and phones can autofill.
    pub fn render(&self, code: &OtpCode, ttl: Duration) -> String {
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
                "code" => text.push_str(code.expose()),
                "minutes" => text.push_str(&minutes.to_string()),
                "seconds" => text.push_str(&seconds.to_string()),
                "app" => text.push_str(&self.app_name),
                _ => {}
            }
            rest = after.get(close + 1..).unwrap_or("");
        }
        text.push_str(rest);
        if let Some(domain) = &self.webotp_domain {
            text.push_str(&format!("\n\n@{domain} #{}", code.expose()));
        }
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
        let template = MessageTemplate::new(MessageTemplate::DEFAULT, "Acme", None).expect("valid");
        assert_eq!(
            template.render(&code(), Duration::from_secs(120)),
            "Your Acme verification code is 042917. It expires in 2 min. Do not share it."
        );
    }

    #[test]
    fn seconds_and_rounded_up_minutes() {
        let template =
            MessageTemplate::new("{code} {minutes}m {seconds}s", "x", None).expect("valid");
        assert_eq!(
            template.render(&code(), Duration::from_secs(90)),
            "042917 2m 90s"
        );
    }

    #[test]
    fn webotp_line_is_appended() {
        let template =
            MessageTemplate::new("Code {code}", "x", Some("example.com")).expect("valid");
        assert_eq!(
            template.render(&code(), Duration::from_secs(60)),
            "Code 042917\n\n@example.com #042917"
        );
    }

    #[test]
    fn bad_templates_are_refused() {
        assert_eq!(
            MessageTemplate::new("{code} {user}", "x", None),
            Err(TemplateError::UnknownPlaceholder("user".into()))
        );
        assert_eq!(
            MessageTemplate::new("{code", "x", None),
            Err(TemplateError::Unclosed)
        );
        assert_eq!(
            MessageTemplate::new("hello", "x", None),
            Err(TemplateError::MissingCode)
        );
    }

    #[test]
    fn values_containing_braces_are_not_expanded_again() {
        let template = MessageTemplate::new("{app}: {code}", "{code}", None).expect("valid");
        assert_eq!(
            template.render(&code(), Duration::from_secs(60)),
            "{code}: 042917"
        );
    }
}
