//! `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`.

use crate::Error;

/// A trace sampler, as named by `OTEL_TRACES_SAMPLER`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SamplerSetting {
    /// Record and export every trace.
    AlwaysOn,
    /// Record nothing (ids are still generated and propagated).
    AlwaysOff,
    /// Keep this fraction of root traces, by trace id.
    TraceIdRatio(f64),
    /// Follow the caller's decision; sample every root (the default).
    ParentBasedAlwaysOn,
    /// Follow the caller's decision; sample no root.
    ParentBasedAlwaysOff,
    /// Follow the caller's decision; keep this fraction of roots.
    ParentBasedTraceIdRatio(f64),
}

const ACCEPTED: &str = "always_on, always_off, traceidratio, parentbased_always_on, \
                        parentbased_always_off, parentbased_traceidratio";

impl SamplerSetting {
    pub(crate) fn parse(name: &str, arg: Option<String>) -> Result<Self, Error> {
        let ratio = || -> Result<f64, Error> {
            match &arg {
                None => Ok(1.0),
                Some(a) => match a.parse::<f64>() {
                    Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
                    _ => Err(Error::invalid_env(
                        "OTEL_TRACES_SAMPLER_ARG",
                        a,
                        format!("not a ratio for sampler {name}"),
                        "a number from 0.0 to 1.0, e.g. 0.25",
                    )),
                },
            }
        };
        Ok(match name.to_ascii_lowercase().as_str() {
            "always_on" => Self::AlwaysOn,
            "always_off" => Self::AlwaysOff,
            "traceidratio" => Self::TraceIdRatio(ratio()?),
            "parentbased_always_on" => Self::ParentBasedAlwaysOn,
            "parentbased_always_off" => Self::ParentBasedAlwaysOff,
            "parentbased_traceidratio" => Self::ParentBasedTraceIdRatio(ratio()?),
            "jaeger_remote" | "parentbased_jaeger_remote" | "xray" => {
                return Err(Error::invalid_env(
                    "OTEL_TRACES_SAMPLER",
                    name,
                    "remote samplers are not supported",
                    ACCEPTED,
                ));
            }
            _ => {
                return Err(Error::invalid_env(
                    "OTEL_TRACES_SAMPLER",
                    name,
                    "unknown sampler",
                    ACCEPTED,
                ));
            }
        })
    }

    /// The spec's name and argument, for the start-up line.
    pub fn describe(&self) -> String {
        match self {
            Self::AlwaysOn => "always_on".into(),
            Self::AlwaysOff => "always_off".into(),
            Self::TraceIdRatio(r) => format!("traceidratio({r})"),
            Self::ParentBasedAlwaysOn => "parentbased_always_on".into(),
            Self::ParentBasedAlwaysOff => "parentbased_always_off".into(),
            Self::ParentBasedTraceIdRatio(r) => format!("parentbased_traceidratio({r})"),
        }
    }

    pub(crate) fn build(&self) -> opentelemetry_sdk::trace::Sampler {
        use opentelemetry_sdk::trace::Sampler;
        match *self {
            Self::AlwaysOn => Sampler::AlwaysOn,
            Self::AlwaysOff => Sampler::AlwaysOff,
            Self::TraceIdRatio(r) => Sampler::TraceIdRatioBased(r),
            Self::ParentBasedAlwaysOn => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
            Self::ParentBasedAlwaysOff => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
            Self::ParentBasedTraceIdRatio(r) => {
                Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(r)))
            }
        }
    }
}
