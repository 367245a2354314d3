//! The OpenAPI 3 document of the REST endpoints, generated from the same catalog that serves
//! them, so it describes exactly what runs: each parameter's type from the schema and the rule the
//! server enforces on it from [`super::rules`], the links between operations from
//! [`super::links`], and every error answer with the envelope and an example.

use super::catalog::{Endpoint, Location, Parameter, IDEMPOTENCY_KEY_HEADER};
use super::shape::{Shape, ShapeKind};
use super::UNSUPPORTED_MEDIA_TYPE_MESSAGE;
use axum::http::Method;
use serde_json::{json, Map, Value};

/// The body field that sends a canned reply instead of `content`.
const COMPOSED_BY: &str = "cannedReplyId";

/// How the description of an endpoint beyond the spec's routes begins.
pub const ADDITION_PREFIX: &str = "规范之外的新增接口：";

pub fn document(endpoints: &[Endpoint]) -> Result<Value, String> {
    let mut paths = Map::new();
    for endpoint in endpoints {
        let method = endpoint.method.as_str().to_lowercase();
        let mut operation = operation(endpoint);
        let links = super::links::links(endpoint, endpoints)?;
        if !links.is_empty() {
            operation["responses"]["200"]["links"] = Value::Object(links);
        }
        let path = paths.entry(endpoint.openapi_path()).or_insert_with(|| json!({}));
        path[method.as_str()] = operation;
    }
    paths.insert(UPLOADS_PATH.to_owned(), uploads_path());
    Ok(json!({
        "openapi": "3.0.3",
        "info": {
            "title": "provider-desk REST API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "服务商小程序的REST接口。每个接口在服务端执行一个GraphQL操作（见 rest_compat/），\
                返回统一的 {code, message, data} 结构；出错时HTTP状态码与code相同，data为null。\
                GraphQL接口：POST /graphql；调试页面：/playground。",
        },
        "servers": [{ "url": "/" }],
        "security": [{ "bearerAuth": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" }
            },
            "schemas": {
                "ErrorEnvelope": {
                    "type": "object",
                    "required": ["code", "message", "data"],
                    "properties": {
                        "code": { "type": "integer", "description": "与HTTP状态码相同", "example": 400 },
                        "message": { "type": "string", "description": "错误说明", "example": "缺少必填参数：title" },
                        "data": { "type": "object", "nullable": true, "description": "出错时为null" },
                        "requestId": {
                            "type": "string",
                            "description": "本次请求的ID（与响应头 x-request-id 相同），反馈问题时请提供",
                            "example": "0000019a214af1451c4c7cbe783278a"
                        }
                    }
                }
            },
            "responses": error_responses(),
        }
    }))
}

/// Where files are uploaded (a plain route of the HTTP layer, not a GraphQL operation).
const UPLOADS_PATH: &str = "/api/uploads";

/// `POST /api/uploads`: served by the HTTP layer with a multipart body, so described by hand.
fn uploads_path() -> Value {
    let attachment = json!({
        "type": "object",
        "required": ["attachmentId", "fileName", "contentType", "size"],
        "properties": {
            "attachmentId": { "type": "string", "description": "发送消息时放入 attachmentIds" },
            "fileName": { "type": "string" },
            "contentType": { "type": "string", "description": "按文件内容识别的类型", "example": "image/png" },
            "size": { "type": "integer", "description": "字节数" },
            "width": { "type": "integer", "description": "图片的宽（像素），仅图片" },
            "height": { "type": "integer", "description": "图片的高（像素），仅图片" },
        }
    });
    let success = json!({
        "type": "object",
        "required": ["code", "message", "data"],
        "properties": {
            "code": { "type": "integer", "enum": [200] },
            "message": { "type": "string", "enum": ["上传成功"] },
            "data": attachment,
        }
    });
    let mut responses = Map::new();
    responses.insert(
        "200".to_owned(),
        json!({ "description": "上传成功", "content": { "application/json": { "schema": success } } }),
    );
    for status in ["400", "401", "413", "415", "429", "500", "503"] {
        responses.insert(status.to_owned(), json!({ "$ref": format!("#/components/responses/{status}") }));
    }
    json!({ "post": {
        "operationId": "uploadFile",
        "summary": "上传附件（截图或文件），再在发送消息时通过 attachmentIds 引用",
        "tags": ["uploads"],
        "description": format!("{ADDITION_PREFIX}聊天中的截图与文件。multipart/form-data，文件放在名为 file 的字段中（即 wx.uploadFile 的 name: 'file'）；\
            类型按文件内容识别，仅接受PNG、JPEG、GIF、WebP、PDF、XLSX/XLS、DOCX、CSV、TXT，其余返回415；\
            超过 UPLOAD_MAX_BYTES（默认10MB）返回413。"),
        "x-addition": true,
        "requestBody": {
            "required": true,
            "content": { "multipart/form-data": { "schema": {
                "type": "object",
                "required": ["file"],
                "properties": { "file": { "type": "string", "format": "binary", "description": "要上传的文件" } }
            } } }
        },
        "responses": responses,
    } })
}

/// Every error answer: status, what it means, and an example message the server gives.
const ERRORS: [(&str, &str, &str); 10] = [
    ("400", "参数错误（缺少参数、格式或长度不符合要求）", "工单标题不能超过100个字符"),
    ("401", "未登录、令牌无效或已过期；登录与刷新接口为账号密码或刷新令牌无效", "请先登录"),
    ("403", "访问被拒绝（IP在禁止名单中）或账号已停用", "账号已停用，请联系管理员"),
    ("404", "资源不存在（或属于其他服务商）", "工单不存在"),
    ("409", "当前状态不允许此操作，或同一幂等键用于了不同的请求", "当前状态不允许此操作"),
    ("413", "请求体过大", "请求体过大，不能超过64KB"),
    ("415", "请求体不是JSON（Content-Type 应为 application/json）", UNSUPPORTED_MEDIA_TYPE_MESSAGE),
    ("429", "请求过于频繁（响应头 Retry-After 给出等待秒数）", "请求过于频繁，请30秒后再试"),
    ("500", "服务器内部错误", "服务器内部错误"),
    ("503", "服务暂时不可用或请求处理超时", "服务暂时不可用，请稍后再试"),
];

fn error_responses() -> Value {
    ERRORS
        .iter()
        .map(|(status, description, message)| {
            let example = json!({
                "code": status.parse::<u16>().unwrap_or_default(),
                "message": message,
                "data": null,
                "requestId": "0000019a214af1451c4c7cbe783278a",
            });
            let mut response = json!({
                "description": description,
                "content": { "application/json": {
                    "schema": { "$ref": "#/components/schemas/ErrorEnvelope" },
                    "example": example,
                } }
            });
            if *status == "429" {
                response["headers"] = json!({
                    "Retry-After": { "description": "多少秒后可以重试", "schema": { "type": "integer" } }
                });
            }
            (status.to_string(), response)
        })
        .collect::<Map<_, _>>()
        .into()
}

fn operation(endpoint: &Endpoint) -> Value {
    let tag = endpoint.path.trim_start_matches("/api/").split('/').next().unwrap_or("api").to_owned();
    let parameters: Vec<Value> = endpoint
        .parameters
        .iter()
        .filter(|p| p.location != Location::Body)
        .map(|p| {
            if p.location == Location::Header {
                return idempotency_key_header(p);
            }
            let mut schema = parameter_schema(p);
            if let Some(default) = &p.default {
                schema["default"] = default.clone();
            }
            let mut parameter = json!({
                "name": p.name,
                "in": if p.location == Location::Path { "path" } else { "query" },
                "required": p.required || p.location == Location::Path,
                "schema": schema,
            });
            // An empty value counts as not sent (`rest::parameters`).
            if p.location == Location::Query && !p.required {
                parameter["allowEmptyValue"] = json!(true);
            }
            if let Some(why) = &p.addition {
                parameter["description"] = json!(format!("{ADDITION_PREFIX}{why}"));
                parameter["x-addition"] = json!(true);
            }
            parameter
        })
        .collect();
    let takes_key = endpoint.parameters.iter().any(|p| p.location == Location::Header);
    let success = json!({
        "type": "object",
        "required": ["code", "message", "data"],
        "properties": {
            "code": { "type": "integer", "enum": [200] },
            "message": { "type": "string", "enum": [endpoint.message] },
            "data": schema(&endpoint.data),
        }
    });
    let mut responses = Map::new();
    responses.insert(
        "200".to_owned(),
        json!({ "description": endpoint.message, "content": { "application/json": { "schema": success } } }),
    );
    let has_path_id = endpoint.parameters.iter().any(|p| p.location == Location::Path);
    let has_body = endpoint.parameters.iter().any(|p| p.location == Location::Body);
    for (status, _, _) in ERRORS {
        let applies = match status {
            // Without a token, it is the credentials or the refresh token that are refused.
            "401" => true,
            "404" => has_path_id || endpoint.parameters.iter().any(|p| p.name == "customerId"),
            "409" => endpoint.method != Method::GET && (has_path_id || takes_key),
            "413" => endpoint.method != Method::GET,
            "415" => has_body,
            _ => true,
        };
        if applies {
            responses.insert(status.to_owned(), json!({ "$ref": format!("#/components/responses/{status}") }));
        }
    }
    let mut operation = json!({
        "operationId": endpoint.operation_id,
        "summary": endpoint.summary,
        "tags": [tag],
        "parameters": parameters,
        "responses": responses,
    });
    if !endpoint.needs_token {
        operation["security"] = json!([]);
    }
    if let Some(why) = &endpoint.addition {
        operation["description"] = json!(format!("{ADDITION_PREFIX}{why}"));
        operation["x-addition"] = json!(true);
    }
    if let Some(body) = request_body(endpoint) {
        operation["requestBody"] = body;
    }
    operation
}

/// A parameter's schema: its type's, with the rule the server enforces on it.
fn parameter_schema(parameter: &Parameter) -> Value {
    let mut schema = schema(&parameter.shape);
    if let Some(rule) = parameter.rule {
        if let (Value::Object(target), Value::Object(keywords)) = (&mut schema, rule.schema()) {
            for (keyword, value) in keywords {
                match (keyword.as_str(), target.get("description")) {
                    ("description", Some(Value::String(first))) => {
                        let joined = format!("{first}；{}", value.as_str().unwrap_or_default());
                        target.insert(keyword, json!(joined));
                    }
                    _ => {
                        target.insert(keyword, value);
                    }
                }
            }
        }
    }
    schema
}

/// The `Idempotency-Key` header parameter of the endpoints that create or change something.
fn idempotency_key_header(parameter: &Parameter) -> Value {
    json!({
        "name": IDEMPOTENCY_KEY_HEADER,
        "in": "header",
        "required": false,
        "description": "幂等键（IETF Idempotency-Key 草案）：1到64个字母、数字、下划线或连字符，可加双引号。\
            网络重试时带上同一个键重发同一请求，服务端不会重复执行，并原样返回第一次成功的响应；\
            同一个键用于内容不同的请求时返回409（CONFLICT）。",
        "schema": parameter_schema(parameter),
        "example": "8e03978e-40d5-43e8-bc93",
    })
}

fn request_body(endpoint: &Endpoint) -> Option<Value> {
    let fields: Vec<_> = endpoint.parameters.iter().filter(|p| p.location == Location::Body).collect();
    if fields.is_empty() {
        return None;
    }
    let required: Vec<&str> = fields.iter().filter(|p| p.required).map(|p| p.name.as_str()).collect();
    let properties: Map<String, Value> = fields.iter().map(|p| (p.name.clone(), parameter_schema(p))).collect();
    let mut body_schema = json!({ "type": "object", "properties": properties });
    if !required.is_empty() {
        body_schema["required"] = json!(required);
    }
    // Text or a canned reply (`service::canned_replies::Compose`): exactly one of the two, where
    // null counts as not sent.
    let composed = fields.iter().any(|p| p.name == COMPOSED_BY);
    if composed {
        body_schema["oneOf"] = json!(["content", COMPOSED_BY]
            .iter()
            .map(|name| json!({ "required": [name], "properties": { *name: { "type": "string" } } }))
            .collect::<Vec<_>>());
    }
    Some(json!({
        "required": !required.is_empty() || composed,
        "content": { "application/json": { "schema": body_schema } }
    }))
}

/// The JSON Schema (OpenAPI 3.0 dialect) of a shape.
fn schema(shape: &Shape) -> Value {
    let mut schema = match &shape.kind {
        ShapeKind::Scalar(name) => match name.as_str() {
            "Int" => json!({ "type": "integer", "format": "int32" }),
            "Float" => json!({ "type": "number" }),
            "Boolean" => json!({ "type": "boolean" }),
            "DateTime" => json!({ "type": "string", "format": "date-time", "example": "2026-01-29T10:00:00Z" }),
            _ => json!({ "type": "string" }),
        },
        ShapeKind::Enum(values) => json!({ "type": "string", "enum": ShapeKind::rest_values(values) }),
        ShapeKind::List(item) => json!({ "type": "array", "items": schema(item) }),
        ShapeKind::Object(members) => {
            let properties: Map<String, Value> =
                members.iter().map(|(key, shape)| (key.clone(), schema(shape))).collect();
            let required: Vec<&String> = members.iter().map(|(key, _)| key).collect();
            json!({ "type": "object", "required": required, "properties": properties, "additionalProperties": false })
        }
    };
    if shape.nullable {
        schema["nullable"] = json!(true);
    }
    if let Some(description) = &shape.description {
        schema["description"] = json!(description);
    }
    schema
}
