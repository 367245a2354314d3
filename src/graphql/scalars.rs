//! The `DateTime` scalar: RFC 3339 in UTC with `Z` and whole seconds, as the spec writes times.

use crate::domain::{format_time, Timestamp};
use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};

#[derive(Debug, Clone, Copy)]
pub struct DateTime(pub Timestamp);

/// A point in time, RFC 3339 in UTC, for example `2026-01-29T10:00:00Z`.
#[Scalar(name = "DateTime")]
impl ScalarType for DateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(text) => chrono::DateTime::parse_from_rfc3339(text)
                .map(|t| DateTime(t.with_timezone(&chrono::Utc)))
                .map_err(|_| InputValueError::custom("时间格式应为 RFC 3339，例如 2026-01-29T10:00:00Z")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(format_time(&self.0))
    }
}

impl From<Timestamp> for DateTime {
    fn from(time: Timestamp) -> Self {
        DateTime(time)
    }
}
