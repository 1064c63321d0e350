//! The standard OpenTelemetry variables that decide whether traces are
//! exported: `OTEL_SDK_DISABLED`, `OTEL_TRACES_EXPORTER`,
//! `OTEL_EXPORTER_OTLP_PROTOCOL`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
//! `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_TRACES_SAMPLER`(`_ARG`).
//!
//! They keep their standard names (callers' platforms set them), so they are
//! an exception to the `OTP_*` rule. They are checked here so a typo stops
//! startup, and handed to the SDK (the sampler too, so its flag counts).

use clap::Args;

use super::{ConfigError, env::true_or_false};
use crate::telemetry::{TraceExport, TraceSampler};

/// The standard OpenTelemetry variables this service acts on.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Traces (OpenTelemetry)")]
pub struct OtelVars {
    /// OTLP/gRPC collector, `http(s)://host:port`; setting it turns trace export on
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otel_exporter_otlp_endpoint: Option<String>,
    /// The same for traces only; wins over the generic one
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")]
    pub otel_exporter_otlp_traces_endpoint: Option<String>,
    /// Only OTLP over gRPC is built in
    #[arg(long, env = "OTEL_EXPORTER_OTLP_PROTOCOL", default_value = "grpc",
          value_parser = ["grpc"])]
    pub otel_exporter_otlp_protocol: String,
    /// The same for traces only
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", default_value = "grpc",
          value_parser = ["grpc"])]
    pub otel_exporter_otlp_traces_protocol: String,
    /// `none` turns export off even with an endpoint set
    #[arg(long, env = "OTEL_TRACES_EXPORTER", default_value = "otlp",
          value_parser = ["otlp", "none"])]
    pub otel_traces_exporter: String,
    /// `true` turns export off (`1`, `yes`, `on` too)
    #[arg(long, env = "OTEL_SDK_DISABLED", default_value_t = false,
          num_args = 0..=1, require_equals = true, default_missing_value = "true",
          ignore_case = true, value_parser = true_or_false())]
    pub otel_sdk_disabled: bool,
    /// Which traces are kept
    #[arg(long, env = "OTEL_TRACES_SAMPLER", default_value = "parentbased_always_on",
          value_parser = SAMPLERS)]
    pub otel_traces_sampler: String,
    /// The ratio of the `*traceidratio` samplers [0-1]
    #[arg(long, env = "OTEL_TRACES_SAMPLER_ARG", default_value = "1.0",
          value_parser = ratio)]
    pub otel_traces_sampler_arg: f64,
}

/// The samplers the SDK implements (the spec's names).
const SAMPLERS: [&str; 6] = [
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
];

/// A sampling ratio.
fn ratio(raw: &str) -> Result<f64, String> {
    raw.parse::<f64>()
        .ok()
        .filter(|ratio| (0.0..=1.0).contains(ratio))
        .ok_or_else(|| "must be a ratio from 0 to 1".to_owned())
}

/// Whether and where spans are exported.
pub(super) fn trace_export(vars: &OtelVars) -> Result<TraceExport, ConfigError> {
    if vars.otel_sdk_disabled || vars.otel_traces_exporter == "none" {
        return Ok(TraceExport::Off);
    }
    let (var, endpoint) = match (
        &vars.otel_exporter_otlp_traces_endpoint,
        &vars.otel_exporter_otlp_endpoint,
    ) {
        (Some(endpoint), _) => ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint),
        (None, Some(endpoint)) => ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        (None, None) => return Ok(TraceExport::Off),
    };
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
        endpoint: endpoint.clone(),
        sampler: sampler(vars),
    })
}

/// `OTEL_TRACES_SAMPLER` with its ratio, handed to the SDK explicitly so
/// that the flags count as much as the variables.
fn sampler(vars: &OtelVars) -> TraceSampler {
    let ratio = vars.otel_traces_sampler_arg;
    match vars.otel_traces_sampler.as_str() {
        "always_on" => TraceSampler::AlwaysOn,
        "always_off" => TraceSampler::AlwaysOff,
        "traceidratio" => TraceSampler::Ratio(ratio),
        "parentbased_always_off" => TraceSampler::ParentBasedAlwaysOff,
        "parentbased_traceidratio" => TraceSampler::ParentBasedRatio(ratio),
        _ => TraceSampler::ParentBasedAlwaysOn,
    }
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
                endpoint: "http://collector:4317".into(),
                sampler: TraceSampler::ParentBasedAlwaysOn,
            }
        );
        for off in [
            ("OTEL_SDK_DISABLED", "true"),
            ("OTEL_SDK_DISABLED", "1"),
            ("OTEL_SDK_DISABLED", "Yes"),
            ("OTEL_TRACES_EXPORTER", "none"),
        ] {
            let vars = [("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"), off];
            assert_eq!(config(&vars).expect("valid").traces, TraceExport::Off);
        }
        // The aliases of false keep export on, as `false` does.
        for on in ["false", "0", "off", "NO"] {
            let vars = [
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
                ("OTEL_SDK_DISABLED", on),
            ];
            assert_ne!(
                config(&vars).expect("valid").traces,
                TraceExport::Off,
                "{on}"
            );
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
                endpoint: "http://traces:4317".into(),
                sampler: TraceSampler::ParentBasedAlwaysOn,
            }
        );
    }

    #[test]
    fn the_sampler_is_handed_to_the_sdk_with_its_ratio() {
        let vars = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
        ];
        let TraceExport::Otlp { sampler, .. } = config(&vars).expect("valid").traces else {
            panic!("exporting");
        };
        assert_eq!(sampler, TraceSampler::ParentBasedRatio(0.25));
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
            ("OTEL_TRACES_EXPORTER", "jaeger", "one of `otlp`, `none`"),
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
