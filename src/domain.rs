//! Domain types that are valid by construction: parse at the edge, then trust.

mod api_key;
mod code;
mod key_ring;
mod locale;
mod phone;
mod region;
mod request_key;
mod secret;
mod whole_seconds;

pub use api_key::{ApiKey, ApiKeyError};
pub use code::{CodeDigest, CodeError, OtpCode};
pub use key_ring::HmacKeys;
pub use locale::{Locale, LocaleError, MAX_LOCALE_CHARS};
pub use phone::{PhoneError, PhoneNumber, split_calling_code};
pub use region::{RegionError, parse_region};
pub use request_key::{ClientKey, IdempotencyKey, RequestKeyError};
pub use secret::{HmacSecret, SubjectKey};
pub use whole_seconds::ceil_seconds;
