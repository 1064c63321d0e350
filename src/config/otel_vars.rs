//! The standard OpenTelemetry variables that decide whether traces are
//! exported: `OTEL_SDK_DISABLED`, `OTEL_TRACES_EXPORTER`,
//! `OTEL_EXPORTER_OTLP_PROTOCOL`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
//! `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_TRACES_SAMPLER`(`_ARG`).
//!
//! They keep their standard names (callers' platforms set them), so they are
//! an exception to the `OTP_*` rule. They are checked here so a typo stops
//! startup; the OpenTelemetry SDK then reads the ones it owns itself.

use super::{ConfigError, Env};
use crate::telemetry::TraceExport;

/// The samplers the SDK implements (the spec's names).
const SAMPLERS: [&str; 6] = [
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
];

/// Whether and where spans are exported.
pub(super) fn trace_export(env: &Env) -> Result<TraceExport, ConfigError> {
    check_sampler(env)?;
    if env.get("OTEL_SDK_DISABLED") == Some("true") {
        return Ok(TraceExport::Off);
    }
    match env.get("OTEL_TRACES_EXPORTER") {
        None | Some("otlp") => {}
        Some("none") => return Ok(TraceExport::Off),
        Some(other) => {
            return Err(ConfigError::new(
                "OTEL_TRACES_EXPORTER",
                format!("must be `otlp` or `none` (got `{other}`)"),
            ));
        }
    }
    let var = if env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some() {
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    } else {
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    };
    let Some(endpoint) = env.get(var) else {
        return Ok(TraceExport::Off);
    };
    check_protocol(env)?;
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        || reqwest::Url::parse(endpoint).is_err()
    {
        return Err(ConfigError::new(
            var,
            format!(
                "must be a collector URL such as http://otel-collector:4317 (got `{endpoint}`)"
            ),
        ));
    }
    Ok(TraceExport::Otlp {
        endpoint: endpoint.to_owned(),
    })
}

/// Only OTLP over gRPC is built in.
fn check_protocol(env: &Env) -> Result<(), ConfigError> {
    for var in [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ] {
        match env.get(var) {
            None | Some("grpc") => {}
            Some(other) => {
                return Err(ConfigError::new(
                    var,
                    format!("must be `grpc`, the only OTLP protocol built in (got `{other}`)"),
                ));
            }
        }
    }
    Ok(())
}

/// The SDK falls back to its default on an unknown sampler with only an
/// internal log; an operator who asked for sampling should hear about a typo.
fn check_sampler(env: &Env) -> Result<(), ConfigError> {
    if let Some(sampler) = env.get("OTEL_TRACES_SAMPLER")
        && !SAMPLERS.contains(&sampler)
    {
        return Err(ConfigError::new(
            "OTEL_TRACES_SAMPLER",
            format!("must be one of {} (got `{sampler}`)", SAMPLERS.join(", ")),
        ));
    }
    if let Some(arg) = env.get("OTEL_TRACES_SAMPLER_ARG")
        && !arg
            .parse::<f64>()
            .is_ok_and(|ratio| (0.0..=1.0).contains(&ratio))
    {
        return Err(ConfigError::new(
            "OTEL_TRACES_SAMPLER_ARG",
            format!("must be a ratio from 0 to 1 (got `{arg}`)"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{assert_refused, config};
    use super::*;

    #[test]
    fn traces_are_off_unless_an_endpoint_is_set() {
        assert_eq!(config(&[]).expect("valid").traces, TraceExport::Off);
        let on = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317")]);
        assert_eq!(
            on.expect("valid").traces,
            TraceExport::Otlp {
                endpoint: "http://collector:4317".into()
            }
        );
        for off in [
            ("OTEL_SDK_DISABLED", "true"),
            ("OTEL_TRACES_EXPORTER", "none"),
        ] {
            let vars = [("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"), off];
            assert_eq!(config(&vars).expect("valid").traces, TraceExport::Off);
        }
    }

    #[test]
    fn the_traces_endpoint_wins_over_the_generic_one() {
        let vars = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://generic:4317"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:4317"),
        ];
        assert_eq!(
            config(&vars).expect("valid").traces,
            TraceExport::Otlp {
                endpoint: "http://traces:4317".into()
            }
        );
    }

    #[test]
    fn bad_otel_settings_name_the_variable() {
        let cases = [
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "collector:4317",
                "collector URL",
            ),
            ("OTEL_TRACES_SAMPLER", "sometimes", "parentbased_always_on"),
            ("OTEL_TRACES_SAMPLER_ARG", "2", "ratio from 0 to 1"),
            ("OTEL_TRACES_EXPORTER", "jaeger", "`otlp` or `none`"),
        ];
        for (var, value, expected) in cases {
            assert_refused(&[(var, value)], var, expected);
        }
        assert_refused(
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ],
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            "`grpc`",
        );
    }
}
