//! Reading a REST request's parameters into the GraphQL operation's variables.
//!
//! Only the form is checked here (present, of the right type, one of the value set); what the
//! values mean is the service layer's business, reached through the operation.

use super::catalog::{Endpoint, Location, Parameter, IDEMPOTENCY_KEY_HEADER};
use super::shape::ShapeKind;
use crate::context::BadRequest;
use crate::error::{AppError, AppResult};
use axum::http::HeaderMap;
use serde_json::{Map, Value};

/// The variables for one request: path parameters, then the query string (GET) or the JSON body
/// (POST), and the `Idempotency-Key` header. Unknown query and body fields are ignored, and so is
/// the header on an endpoint that takes no key (reading, signing in, marking read: all naturally
/// idempotent).
pub fn variables(
    endpoint: &Endpoint,
    path: &[(&str, &str)],
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> AppResult<Value> {
    let body = body_fields(endpoint, body)?;
    let query: Vec<(String, String)> = query.map(parse_query).unwrap_or_default();
    let mut variables = Map::new();
    for parameter in &endpoint.parameters {
        let raw = match parameter.location {
            Location::Path => path.iter().find(|(name, _)| *name == parameter.name).map(|(_, v)| Value::from(*v)),
            // The last occurrence wins; an empty value counts as absent.
            Location::Query => query
                .iter()
                .rev()
                .find(|(name, _)| *name == parameter.name)
                .filter(|(_, value)| !value.is_empty())
                .map(|(_, value)| Value::from(value.as_str())),
            Location::Body => body.get(&parameter.name).filter(|value| !value.is_null()).cloned(),
            Location::Header => idempotency_key(headers)?,
        };
        match raw {
            Some(raw) => {
                variables.insert(parameter.name.clone(), coerce(parameter, raw)?);
            }
            None if parameter.required => {
                return Err(bad(format!("缺少必填参数：{}", parameter.name)));
            }
            None => {}
        }
    }
    Ok(Value::Object(variables))
}

/// The `Idempotency-Key` header's key: as the draft sends it, a quoted string (an RFC 8941
/// sf-string), or bare; what a key may hold is checked with the argument it becomes.
fn idempotency_key(headers: &HeaderMap) -> AppResult<Option<Value>> {
    let Some(raw) = headers.get(IDEMPOTENCY_KEY_HEADER) else { return Ok(None) };
    let text = raw.to_str().map_err(|_| bad(format!("请求头{IDEMPOTENCY_KEY_HEADER}格式不正确")))?.trim();
    let key = text.strip_prefix('"').and_then(|rest| rest.strip_suffix('"')).unwrap_or(text);
    Ok(Some(Value::from(key)))
}

fn body_fields(endpoint: &Endpoint, body: &[u8]) -> AppResult<Map<String, Value>> {
    let has_body_parameters = endpoint.parameters.iter().any(|p| p.location == Location::Body);
    if !has_body_parameters || body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(fields)) => Ok(fields),
        _ => {
            crate::context::note_bad_request(BadRequest::MalformedBody);
            Err(AppError::BadInput { field: None, message: "请求体必须是JSON对象".to_owned() })
        }
    }
}

fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

/// Decodes `%XX` escapes and `+` (a space in query strings); invalid escapes stay as written.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => decoded.push(b' '),
            b'%' => match (bytes.get(i + 1).and_then(hex_digit), bytes.get(i + 2).and_then(hex_digit)) {
                (Some(high), Some(low)) => {
                    decoded.push(high << 4 | low);
                    i += 2;
                }
                _ => decoded.push(b'%'),
            },
            byte => decoded.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

fn hex_digit(byte: &u8) -> Option<u8> {
    (*byte as char).to_digit(16).map(|digit| digit as u8)
}

/// Checks one raw value against the parameter's shape and turns it into the GraphQL variable.
/// Query strings carry only text, so numbers and booleans are read from it there.
fn coerce(parameter: &Parameter, raw: Value) -> AppResult<Value> {
    let name = &parameter.name;
    match (&parameter.shape.kind, raw) {
        (ShapeKind::Scalar(scalar), raw) => match (scalar.as_str(), raw) {
            ("String" | "ID" | "DateTime", Value::String(text)) => Ok(Value::String(text)),
            ("String" | "ID" | "DateTime", _) => Err(bad(format!("参数{name}必须是字符串"))),
            ("Int", Value::Number(number)) if number.is_i64() => Ok(Value::Number(number)),
            ("Int", Value::String(text)) => match text.trim().parse::<i32>() {
                Ok(number) => Ok(Value::from(number)),
                Err(_) => Err(bad(format!("参数{name}必须是整数"))),
            },
            ("Int", _) => Err(bad(format!("参数{name}必须是整数"))),
            ("Boolean", Value::Bool(flag)) => Ok(Value::Bool(flag)),
            ("Boolean", Value::String(text)) if text == "true" || text == "false" => Ok(Value::Bool(text == "true")),
            ("Boolean", _) => Err(bad(format!("参数{name}必须是true或false"))),
            (_, raw) => Ok(raw),
        },
        (ShapeKind::Enum(values), Value::String(text)) => values
            .iter()
            .find(|value| value.to_lowercase() == text)
            .map(|value| Value::String(value.clone()))
            .ok_or_else(|| {
                let allowed = ShapeKind::rest_values(values).join(", ");
                bad(format!("参数{name}的值无效，可选值：{allowed}"))
            }),
        (ShapeKind::Enum(values), _) => {
            let allowed = ShapeKind::rest_values(values).join(", ");
            Err(bad(format!("参数{name}必须是字符串，可选值：{allowed}")))
        }
        // A list in a query string is its items joined by commas (`kinds=customer,ticket`).
        (ShapeKind::List(item), raw) => {
            let items: Vec<Value> = match raw {
                Value::String(text) => text.split(',').map(|item| Value::String(item.trim().to_owned())).collect(),
                Value::Array(items) => items,
                _ => return Err(bad(format!("参数{name}必须是以逗号分隔的列表"))),
            };
            let item = Parameter { shape: (**item).clone(), ..parameter.clone() };
            items.into_iter().map(|value| coerce(&item, value)).collect::<AppResult<Vec<_>>>().map(Value::Array)
        }
        (ShapeKind::Object(_), _) => Err(bad(format!("参数{name}的类型不受支持"))),
    }
}

fn bad(message: String) -> AppError {
    AppError::BadInput { field: None, message }
}
