use super::*;

const EXAMPLE: &str = include_str!("../../../deploy/prices.example.toml");

fn refused(text: &str) -> String {
    PriceTable::parse(text).expect_err(text).to_string()
}

#[test]
fn the_example_file_is_valid() {
    let table = PriceTable::parse(EXAMPLE).expect("the example parses");
    assert_eq!(table.currency().code(), "USD");
    assert!(table.lists(ProviderName::Twilio));
}

#[test]
fn a_country_row_wins_and_others_take_the_default_row() {
    let table = PriceTable::parse(
        r#"
        currency = "USD"
        [twilio]
        "*" = { sms = "0.05", voice = 0.014 }
        us = { sms = 0.0079 }
        [vonage]
        IN = { sms = "0.04" }
        "#,
    )
    .expect("valid");
    let sms = |provider, region| table.price(provider, Channel::Sms, region);
    assert_eq!(sms(ProviderName::Twilio, Some("US")), Some(Micros(7_900)));
    assert_eq!(sms(ProviderName::Twilio, Some("GB")), Some(Micros(50_000)));
    assert_eq!(sms(ProviderName::Twilio, None), Some(Micros(50_000)));
    // The US row has no voice column: the default row's.
    let voice = table.price(ProviderName::Twilio, Channel::Voice, Some("US"));
    assert_eq!(voice, Some(Micros(14_000)));
    assert_eq!(sms(ProviderName::Vonage, Some("IN")), Some(Micros(40_000)));
    assert_eq!(
        sms(ProviderName::Vonage, Some("US")),
        None,
        "no default row"
    );
    assert_eq!(sms(ProviderName::TextBee, Some("US")), None, "not listed");
    assert_eq!(table.highest(Channel::Sms), Some(Micros(50_000)));
    assert!(table.has_country_rows());
}

#[test]
fn bad_files_are_refused_with_one_line_naming_the_entry() {
    for (text, expected) in [
        ("currency = ", "is not valid TOML (line 1"),
        ("[twilio]\n\"*\" = { sms = \"0.05\" }", "has no `currency"),
        (
            "currency = \"usd\"\n[twilio]\n\"*\" = { sms = 1 }",
            "entry `currency`",
        ),
        (
            "currency = \"XYZ\"\n[twilio]\n\"*\" = { sms = 1 }",
            "ISO 4217",
        ),
        (
            "currency = \"USD\"\n[pigeon]\n\"*\" = { sms = 1 }",
            "entry `pigeon`: unknown provider",
        ),
        (
            "currency = \"USD\"\n[twilio]\nUSA = { sms = 1 }",
            "entry `twilio.USA`",
        ),
        (
            "currency = \"USD\"\n[twilio]\nUS = { sms = -0.01 }",
            "entry `twilio.US.sms` is negative",
        ),
        (
            "currency = \"USD\"\n[twilio]\nUS = { sms = \"-1\" }",
            "entry `twilio.US.sms` is negative",
        ),
        (
            "currency = \"USD\"\n[twilio]\nUS = { fax = 1 }",
            "entry `twilio.US.fax`: unknown channel",
        ),
        (
            "currency = \"USD\"\n[twilio]\nUS = {}",
            "entry `twilio.US`: gives no price",
        ),
        (
            "currency = \"USD\"\n[twilio]\nUS = 1",
            "entry `twilio.US`: must be a table",
        ),
        (
            "currency = \"USD\"\n[twilio]\nUS = { sms = 1 }\nus = { sms = 2 }",
            "a second row",
        ),
        (
            "currency = \"USD\"\n[twilio]\nUS = { sms = \"0.0000001\" }",
            "more than 6 decimals",
        ),
        ("currency = \"USD\"", "lists no provider"),
        (
            "currency = \"USD\"\n[twilio]\nUK = { sms = 1 }",
            "entry `twilio.UK`: `UK` is not a country code \
             (ISO 3166-1 alpha-2, e.g. US, IN, GB; the United Kingdom is GB), nor `\"*\"`",
        ),
        (
            "currency = \"USD\"\n[twilio]\nEU = { sms = 1 }",
            "entry `twilio.EU`: `EU` is not a country code",
        ),
    ] {
        let line = refused(text);
        assert!(line.contains(expected), "{text}: {line}");
        assert!(!line.contains('\n'), "one line: {line}");
    }
}

#[test]
fn a_toml_error_at_the_start_of_a_line_names_that_line() {
    let text = "currency = \"USD\"\n[twilio]\n\"*\" = { sms = \"0.05\" }\nUS = { sms = \"0.01\" }\nUS = { sms = \"0.02\" }\n";
    let line = refused(text);
    assert!(line.contains("is not valid TOML (line 5:"), "{line}");
}
