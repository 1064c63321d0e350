//! The price table (`OTP_PRICES_FILE`): one currency, and per provider one
//! row per destination country (ISO 3166-1 alpha-2) plus a default row
//! (`"*"`), each row a price per channel: `sms` per message segment,
//! `whatsapp` per message, `voice` per minute. Read and checked once at
//! startup; a bad file stops the process with one line naming the entry.
//!
//! ```toml
//! currency = "USD"
//! [twilio]
//! "*" = { sms = "0.0500" }
//! US = { sms = "0.0083", voice = "0.0140" }
//! ```

use std::collections::BTreeMap;

use thiserror::Error;

use super::money::{AmountError, Currency, Micros};
use crate::{
    domain::{RegionError, parse_region},
    sms::ProviderName,
};

/// What a price is per: the channel a code goes out on (a column of the
/// file): `sms` per segment, `whatsapp` per message, `voice` per minute.
pub use crate::sms::Channel;

/// One row: a price per channel, where given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PriceRow {
    prices: [Option<Micros>; 3],
}

impl PriceRow {
    /// The price on `channel`, if the row gives one.
    pub fn get(&self, channel: Channel) -> Option<Micros> {
        self.prices[channel as usize]
    }
}

/// One provider's rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ProviderPrices {
    /// The `"*"` row: every country without a row of its own.
    default: Option<PriceRow>,
    by_region: BTreeMap<String, PriceRow>,
}

/// Prices per provider, country and channel, in one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceTable {
    currency: Currency,
    providers: BTreeMap<ProviderName, ProviderPrices>,
}

/// Why `OTP_PRICES_FILE` was refused (one line, naming the entry).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PricesError {
    /// Not TOML.
    #[error("is not valid TOML (line {line}: {message})")]
    Toml {
        /// 1-based line of the error.
        line: usize,
        /// The parser's message, on one line.
        message: String,
    },
    /// No `currency = "..."`.
    #[error("has no `currency = \"USD\"` (an ISO 4217 code)")]
    NoCurrency,
    /// A currency that is not an ISO 4217 code.
    #[error("entry `currency`: `{0}` is not an ISO 4217 currency code such as USD or EUR")]
    BadCurrency(String),
    /// A table named after no provider.
    #[error("entry `{0}`: unknown provider (known: {known})", known = ProviderName::list())]
    UnknownProvider(String),
    /// A row key that is neither a region of the numbering plan nor `*`.
    #[error("entry `{0}`: {1}, nor `\"*\"`")]
    BadCountry(String, RegionError),
    /// Two keys for one country (`US` and `us`).
    #[error("entry `{0}`: a second row for the same country")]
    DuplicateCountry(String),
    /// A provider or row that is not a table.
    #[error("entry `{0}`: must be a table such as `{{ sms = \"0.0079\" }}`")]
    NotATable(String),
    /// A column that is no channel.
    #[error("entry `{0}`: unknown channel (known: sms, whatsapp, voice)")]
    UnknownChannel(String),
    /// A price that is not a non-negative decimal.
    #[error("entry `{0}` {1} (`{amount}`)", amount = .1.amount())]
    BadPrice(String, AmountError),
    /// A row without a price.
    #[error("entry `{0}`: gives no price")]
    EmptyRow(String),
    /// No provider at all.
    #[error("lists no provider; add e.g. `[twilio]` with `\"*\" = {{ sms = \"0.05\" }}`")]
    NoProviders,
}

impl PriceTable {
    /// Reads a prices file.
    pub fn parse(toml_text: &str) -> Result<Self, PricesError> {
        let table: toml::Table = toml_text.parse().map_err(|err: toml::de::Error| {
            // 1-based: the newlines before the error, plus one (`lines()`
            // would miss the line an error at its first column starts).
            let line = err
                .span()
                .map_or(1, |span| toml_text[..span.start].matches('\n').count() + 1);
            PricesError::Toml {
                line,
                message: err.message().replace('\n', " ").trim().to_owned(),
            }
        })?;
        let mut currency = None;
        let mut providers = BTreeMap::new();
        for (key, value) in &table {
            if key == "currency" {
                let code = value.as_str().unwrap_or_default();
                currency = Some(
                    Currency::parse(code)
                        .ok_or_else(|| PricesError::BadCurrency(code.to_owned()))?,
                );
                continue;
            }
            let name = key
                .parse::<ProviderName>()
                .map_err(|()| PricesError::UnknownProvider(key.clone()))?;
            let rows = value
                .as_table()
                .ok_or_else(|| PricesError::NotATable(key.clone()))?;
            providers.insert(name, provider_prices(key, rows)?);
        }
        let currency = currency.ok_or(PricesError::NoCurrency)?;
        if providers.is_empty() {
            return Err(PricesError::NoProviders);
        }
        Ok(Self {
            currency,
            providers,
        })
    }

    /// The one currency of every price.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// Whether the table has a row for `provider` at all.
    pub fn lists(&self, provider: ProviderName) -> bool {
        self.providers.contains_key(&provider)
    }

    /// Whether any row of `provider` (its `"*"` row or a country's) gives a
    /// price on `channel`: without one, every send it carries is refused.
    pub fn prices_channel(&self, provider: ProviderName, channel: Channel) -> bool {
        self.providers.get(&provider).is_some_and(|prices| {
            prices
                .default
                .iter()
                .chain(prices.by_region.values())
                .any(|row| row.get(channel).is_some())
        })
    }

    /// Whether any provider has a row for a country of its own: without
    /// one, a destination's region is never needed (it can cost a parse).
    pub fn has_country_rows(&self) -> bool {
        self.providers.values().any(|p| !p.by_region.is_empty())
    }

    /// Every country some row names.
    pub fn countries(&self) -> impl Iterator<Item = &str> {
        self.providers
            .values()
            .flat_map(|p| p.by_region.keys().map(String::as_str))
    }

    /// `provider`'s price on `channel` to `region` (its row, else its
    /// default row); `None` when neither gives one: such a send is refused.
    pub fn price(
        &self,
        provider: ProviderName,
        channel: Channel,
        region: Option<&str>,
    ) -> Option<Micros> {
        let prices = self.providers.get(&provider)?;
        region
            .and_then(|region| prices.by_region.get(region))
            .and_then(|row| row.get(channel))
            .or_else(|| prices.default.and_then(|row| row.get(channel)))
    }

    /// The highest price on `channel` anywhere in the table.
    pub fn highest(&self, channel: Channel) -> Option<Micros> {
        self.providers
            .values()
            .flat_map(|p| p.default.iter().chain(p.by_region.values()))
            .filter_map(|row| row.get(channel))
            .max()
    }
}

/// One provider's table of rows.
fn provider_prices(provider: &str, rows: &toml::Table) -> Result<ProviderPrices, PricesError> {
    let mut prices = ProviderPrices::default();
    for (key, value) in rows {
        let entry = format!("{provider}.{key}");
        let row = price_row(&entry, value)?;
        if key == "*" {
            prices.default = Some(row);
            continue;
        }
        let region =
            parse_region(key).map_err(|err| PricesError::BadCountry(entry.clone(), err))?;
        if prices.by_region.insert(region, row).is_some() {
            return Err(PricesError::DuplicateCountry(entry));
        }
    }
    Ok(prices)
}

/// One row: `{ sms = "0.0079", voice = 0.014 }`.
fn price_row(entry: &str, value: &toml::Value) -> Result<PriceRow, PricesError> {
    let columns = value
        .as_table()
        .ok_or_else(|| PricesError::NotATable(entry.to_owned()))?;
    let mut row = PriceRow::default();
    for (column, price) in columns {
        let cell = format!("{entry}.{column}");
        let channel = Channel::ALL
            .into_iter()
            .find(|channel| channel.as_str() == column)
            .ok_or_else(|| PricesError::UnknownChannel(cell.clone()))?;
        row.prices[channel as usize] = Some(amount(&cell, price)?);
    }
    if row.prices.iter().all(Option::is_none) {
        return Err(PricesError::EmptyRow(entry.to_owned()));
    }
    Ok(row)
}

/// A price written as a string (`"0.0079"`, read exactly) or a TOML number
/// (read through its shortest decimal spelling, which is what was typed).
fn amount(cell: &str, value: &toml::Value) -> Result<Micros, PricesError> {
    let text = match value {
        toml::Value::String(text) => text.clone(),
        toml::Value::Integer(n) => n.to_string(),
        toml::Value::Float(x) if x.is_finite() => format!("{x}"),
        other => format!("a {}", other.type_str()),
    };
    Micros::parse(&text).map_err(|why| PricesError::BadPrice(cell.to_owned(), why))
}

#[cfg(test)]
mod tests;
