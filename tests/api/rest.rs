//! The REST compatibility layer (spec section 3) through the real HTTP server: every documented
//! endpoint answers in the spec's envelope with `data` of the shape of the spec's example, refuses
//! what it should with the documented status (and changes nothing when it does), and is described
//! by the OpenAPI document behind the offline Swagger UI.

use crate::support::*;
use base64::Engine;
use chrono::DateTime;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::sync::LazyLock;

/// The response examples of spec section 3, copied from the spec (only its `// 更多...` comments
/// are left out, since JSON has none), keyed by `METHOD /path` as the spec writes the route.
const SPEC_EXAMPLES: &str = r#"{
"GET /api/search": {
    "code": 200,
    "message": "搜索成功",
    "data": {
      "hits": [
        { "kind": "ticket", "id": "t001", "customerId": "c001", "snippet": "…仓库盘点的库存差异…", "at": "2024-01-15T10:30:00Z" }
      ],
      "total": 1,
      "totalIsExact": true,
      "page": 1,
      "pageSize": 10
    }
  },
"POST /api/chat/typing": {
    "code": 200,
    "message": "已接收",
    "data": true
  },
"POST /api/auth/login": {
    "code": 200,
    "message": "登录成功",
    "data": {
      "token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9...",
      "userInfo": {
        "id": "sp001",
        "name": "服务商A",
        "contactPerson": "张三",
        "phone": "13812345678",
        "email": "service@example.com",
        "region": "北京市朝阳区"
      }
    }
},
"POST /api/auth/logout": {
    "code": 200,
    "message": "登出成功",
    "data": {
      "success": true
    }
},
"POST /api/auth/refresh": {
    "code": 200,
    "message": "令牌刷新成功",
    "data": {
      "token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9...",
      "refreshToken": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9..."
    }
},
"GET /api/customers": {
    "code": 200,
    "message": "获取成功",
    "data": {
      "customers": [
        {
          "id": "c001",
          "name": "客户A",
          "contactPerson": "李四",
          "phone": "13987654321",
          "email": "customer@example.com",
          "region": "上海市浦东新区",
          "softwareVersion": "专业版",
          "portCount": 50,
          "status": "active",
          "usageScore": 85,
          "unresolvedIssues": 2,
          "lastActiveTime": "2026-01-29T10:00:00Z",
          "expiryDate": "2026-12-31T00:00:00Z"
        }
      ],
      "total": 100,
      "page": 1,
      "pageSize": 10
    }
},
"GET /api/customers/:id": {
    "code": 200,
    "message": "获取成功",
    "data": {
      "id": "c001",
      "name": "客户A",
      "contactPerson": "李四",
      "phone": "13987654321",
      "email": "customer@example.com",
      "region": "上海市浦东新区",
      "softwareVersion": "专业版",
      "portCount": 50,
      "purchaseDate": "2025-01-01T00:00:00Z",
      "expiryDate": "2026-12-31T00:00:00Z",
      "status": "active",
      "serviceProviderId": "sp001",
      "serviceProviderName": "服务商A",
      "usageScore": 85,
      "usageScoreDetails": {
        "loginFrequency": 90,
        "featureUsage": 80,
        "dataInput": 85,
        "trainingCompletion": 95
      },
      "unresolvedIssues": 2,
      "lastActiveTime": "2026-01-29T10:00:00Z",
      "createdAt": "2025-01-01T00:00:00Z",
      "updatedAt": "2026-01-29T10:00:00Z"
    }
},
"GET /api/customers/:id/tickets": {
    "code": 200,
    "message": "获取成功",
    "data": {
      "tickets": [
        {
          "id": "t001",
          "title": "系统登录失败",
          "content": "尝试登录系统时提示账号或密码错误，但确认账号密码正确。",
          "type": "system_issue",
          "status": "processing",
          "createdAt": "2026-01-28T00:00:00Z",
          "updatedAt": "2026-01-29T10:00:00Z",
          "lastProcessor": "客服小王"
        }
      ],
      "total": 20,
      "page": 1,
      "pageSize": 10
    }
},
"GET /api/customers/:id/usage-score": {
    "code": 200,
    "message": "获取成功",
    "data": {
      "customerId": "c001",
      "customerName": "客户A",
      "totalScore": 85,
      "scoreLevel": "高",
      "scoreDetails": {
        "loginFrequency": {
          "score": 90,
          "level": "高",
          "description": "登录频率较高，使用活跃"
        },
        "featureUsage": {
          "score": 80,
          "level": "中高",
          "description": "使用了大部分核心功能"
        },
        "dataInput": {
          "score": 85,
          "level": "中高",
          "description": "数据输入量较大，系统使用充分"
        },
        "trainingCompletion": {
          "score": 95,
          "level": "高",
          "description": "培训完成度高，操作规范"
        }
      },
      "suggestions": [
        "可以考虑升级到企业版，获得更多高级功能",
        "建议定期进行系统使用培训，提高团队整体使用水平"
      ],
      "updatedAt": "2026-01-29T00:00:00Z"
    }
},
"GET /api/tickets": {
    "code": 200,
    "message": "获取成功",
    "data": {
      "tickets": [
        {
          "id": "t001",
          "customerId": "c001",
          "customerName": "客户A",
          "title": "系统登录失败",
          "content": "尝试登录系统时提示账号或密码错误，但确认账号密码正确。",
          "type": "system_issue",
          "status": "processing",
          "escalationStatus": "normal",
          "createdAt": "2026-01-28T00:00:00Z",
          "updatedAt": "2026-01-29T10:00:00Z",
          "lastProcessor": "客服小王"
        }
      ],
      "total": 50,
      "page": 1,
      "pageSize": 10
    }
},
"GET /api/tickets/:id": {
    "code": 200,
    "message": "获取成功",
    "data": {
      "id": "t001",
      "customerId": "c001",
      "customerName": "客户A",
      "title": "系统登录失败",
      "content": "尝试登录系统时提示账号或密码错误，但确认账号密码正确。",
      "type": "system_issue",
      "status": "processing",
      "escalationStatus": "normal",
      "serviceProviderId": "sp001",
      "serviceProviderName": "服务商A",
      "assigneeId": "cs001",
      "assigneeName": "客服小王",
      "createdAt": "2026-01-28T00:00:00Z",
      "updatedAt": "2026-01-29T10:00:00Z",
      "resolvedAt": null,
      "processingHistory": [
        {
          "id": "h001",
          "operatorId": "cs001",
          "operatorName": "客服小王",
          "action": "assign",
          "content": "工单已分配给客服小王",
          "timestamp": "2026-01-28T09:00:00Z"
        },
        {
          "id": "h002",
          "operatorId": "cs001",
          "operatorName": "客服小王",
          "action": "process",
          "content": "正在处理登录问题",
          "timestamp": "2026-01-29T10:00:00Z"
        }
      ]
    }
},
"POST /api/tickets": {
    "code": 200,
    "message": "创建成功",
    "data": {
      "ticketId": "t002",
      "customerId": "c001",
      "customerName": "客户A",
      "title": "产品功能建议",
      "type": "product_suggestion",
      "status": "open",
      "createdAt": "2026-01-30T00:00:00Z"
    }
},
"POST /api/tickets/:id/reply": {
    "code": 200,
    "message": "回复成功",
    "data": {
      "ticketId": "t001",
      "replyId": "r001",
      "content": "已收到您的问题，我们正在处理中",
      "operatorId": "sp001",
      "operatorName": "服务商A",
      "timestamp": "2026-01-30T10:00:00Z"
    }
},
"POST /api/tickets/:id/resolve": {
    "code": 200,
    "message": "标记成功",
    "data": {
      "ticketId": "t001",
      "status": "resolved",
      "resolvedAt": "2026-01-30T12:00:00Z",
      "resolution": "已重置密码，问题已解决"
    }
},
"POST /api/tickets/:id/escalate": {
    "code": 200,
    "message": "升级成功",
    "data": {
      "ticketId": "t001",
      "escalationStatus": "escalated",
      "reason": "技术复杂度较高，需要专业技术支持",
      "escalatedAt": "2026-01-30T14:00:00Z",
      "notificationSent": true
    }
},
"GET /api/messages": {
    "code": 200,
    "message": "获取成功",
    "data": {
      "messages": [
        {
          "id": "m001",
          "type": "ticket_update",
          "title": "工单状态更新",
          "content": "客户A的工单\"系统登录失败\"状态已更新为处理中",
          "relatedCustomerId": "c001",
          "relatedCustomerName": "客户A",
          "relatedTicketId": "t001",
          "readStatus": "unread",
          "createdAt": "2026-01-29T10:00:00Z"
        }
      ],
      "total": 20,
      "page": 1,
      "pageSize": 10,
      "unreadCount": 5
    }
},
"GET /api/messages/:id": {
    "code": 200,
    "message": "获取成功",
    "data": {
      "id": "m001",
      "serviceProviderId": "sp001",
      "type": "ticket_update",
      "title": "工单状态更新",
      "content": "客户A的工单\"系统登录失败\"状态已更新为处理中",
      "relatedCustomerId": "c001",
      "relatedCustomerName": "客户A",
      "relatedTicketId": "t001",
      "readStatus": "read",
      "createdAt": "2026-01-29T10:00:00Z"
    }
},
"POST /api/messages/:id/read": {
    "code": 200,
    "message": "标记成功",
    "data": {
      "messageId": "m001",
      "readStatus": "read",
      "updatedAt": "2026-01-30T09:00:00Z"
    }
},
"POST /api/messages/read-all": {
    "code": 200,
    "message": "标记成功",
    "data": {
      "success": true,
      "markedCount": 5,
      "updatedAt": "2026-01-30T09:00:00Z"
    }
},
"GET /api/chat/messages": {
    "code": 200,
    "message": "获取成功",
    "data": {
      "messages": [
        {
          "id": "cm001",
          "customerId": "c001",
          "customerName": "客户A",
          "serviceProviderId": "sp001",
          "serviceProviderName": "服务商A",
          "senderType": "customer",
          "content": "您好，我遇到了登录问题",
          "timestamp": "2026-01-29T09:00:00Z",
          "status": "read"
        },
        {
          "id": "cm002",
          "customerId": "c001",
          "customerName": "客户A",
          "serviceProviderId": "sp001",
          "serviceProviderName": "服务商A",
          "senderType": "service_provider",
          "content": "您好，请问具体是什么登录问题？",
          "timestamp": "2026-01-29T09:05:00Z",
          "status": "read"
        }
      ],
      "total": 50,
      "page": 1,
      "pageSize": 20
    }
},
"POST /api/chat/send": {
    "code": 200,
    "message": "发送成功",
    "data": {
      "messageId": "cm003",
      "customerId": "c001",
      "customerName": "客户A",
      "content": "请尝试重置密码，操作步骤如下：...",
      "senderType": "service_provider",
      "timestamp": "2026-01-29T09:10:00Z",
      "status": "sent"
    }
},
"POST /api/chat/escalate": {
    "code": 200,
    "message": "升级成功",
    "data": {
      "ticketId": "t003",
      "customerId": "c001",
      "customerName": "客户A",
      "title": "聊天升级工单",
      "type": "issue_escalation",
      "status": "open",
      "escalationStatus": "escalated",
      "createdAt": "2026-01-29T10:00:00Z"
    }
}
}"#;

static EXAMPLES: LazyLock<Map<String, Value>> =
    LazyLock::new(|| serde_json::from_str(SPEC_EXAMPLES).expect("the spec's examples are JSON"));

/// The spec's whole response example of a route (`"POST /api/tickets/:id/reply"`).
fn documented(route: &str) -> &'static Value {
    EXAMPLES.get(route).unwrap_or_else(|| panic!("the spec documents {route}"))
}

/// The value sets of the spec (section 3's parameter tables and section 4's models), by field.
/// A field's set is the one holding the example's own value: `status` means three things.
const VALUE_SETS: [(&str, &[&str]); 8] = [
    ("status", &["active", "expiring", "expired"]),
    ("status", &["open", "processing", "resolved"]),
    ("status", &["sent", "delivered", "read"]),
    (
        "type",
        &[
            "system_issue",
            "product_suggestion",
            "training_implementation",
            "renewal_question",
            "issue_escalation",
            "complaint",
        ],
    ),
    ("type", &["system_notification", "customer_alert", "ticket_update"]),
    ("escalationStatus", &["normal", "escalated"]),
    ("readStatus", &["unread", "read"]),
    ("senderType", &["customer", "service_provider"]),
];

/// Fields that section 4's models declare without `required`: a ticket may have no assignee yet,
/// and a system notification concerns no customer or ticket. They may be null where the example
/// happens to show a string.
const OPTIONAL_FIELDS: [&str; 6] =
    ["assigneeId", "assigneeName", "resolvedAt", "relatedCustomerId", "relatedCustomerName", "relatedTicketId"];

fn value_set(field: &str, example: &str) -> Option<&'static [&'static str]> {
    let mut sets = VALUE_SETS.iter().filter(|(name, _)| *name == field).peekable();
    sets.peek()?;
    let found = sets.find(|(_, values)| values.contains(&example)).map(|(_, values)| *values);
    Some(found.unwrap_or_else(|| panic!("the example's {field} `{example}` is in one of the spec's value sets")))
}

fn is_rfc3339(text: &str) -> bool {
    DateTime::parse_from_rfc3339(text).is_ok()
}

fn check_time(text: &str, path: &str, errors: &mut Vec<String>) {
    if !(is_rfc3339(text) && text.ends_with('Z')) {
        errors.push(format!("{path}: `{text}` is not an RFC 3339 UTC time ending in Z"));
    }
}

/// Asserts that `actual` has the shape of the spec's `example`: the same keys in every object,
/// values of the same JSON type, times where the example has times, and value-set fields within
/// the spec's lowercase values. Every item of an array must match the example's first item.
fn assert_same_shape(actual: &Value, example: &Value, path: &str) {
    let mut errors = Vec::new();
    shape_errors(actual, example, None, path, &mut errors);
    assert!(errors.is_empty(), "not the spec's shape:\n  {}\nin {actual}", errors.join("\n  "));
}

fn shape_errors(actual: &Value, example: &Value, field: Option<&str>, path: &str, errors: &mut Vec<String>) {
    match example {
        Value::Object(expected) => {
            let Some(object) = actual.as_object() else {
                return errors.push(format!("{path}: expected an object, got {actual}"));
            };
            let missing: Vec<&String> = expected.keys().filter(|key| !object.contains_key(*key)).collect();
            let extra: Vec<&String> = object.keys().filter(|key| !expected.contains_key(*key)).collect();
            if !missing.is_empty() {
                errors.push(format!("{path}: missing keys {missing:?}"));
            }
            if !extra.is_empty() {
                errors.push(format!("{path}: extra keys {extra:?}"));
            }
            for (key, value) in expected {
                if let Some(actual) = object.get(key) {
                    shape_errors(actual, value, Some(key), &format!("{path}.{key}"), errors);
                }
            }
        }
        Value::Array(items) => {
            let first = items.first().expect("every array of the examples shows an item");
            let Some(actual) = actual.as_array() else {
                return errors.push(format!("{path}: expected an array, got {actual}"));
            };
            for (index, item) in actual.iter().enumerate() {
                shape_errors(item, first, None, &format!("{path}[{index}]"), errors);
            }
        }
        Value::Null => match actual {
            Value::Null => {}
            // The only null of the examples is a time not reached yet (`resolvedAt`).
            Value::String(text) if field.is_some_and(|field| field.ends_with("At")) => check_time(text, path, errors),
            Value::String(_) => {}
            other => errors.push(format!("{path}: expected null or a string, got {other}")),
        },
        Value::String(expected) => match actual {
            Value::Null if field.is_some_and(|field| OPTIONAL_FIELDS.contains(&field)) => {}
            Value::String(text) => {
                if is_rfc3339(expected) {
                    check_time(text, path, errors);
                }
                if let Some(values) = field.and_then(|field| value_set(field, expected)) {
                    if !values.contains(&text.as_str()) {
                        errors.push(format!("{path}: `{text}` is not one of {values:?}"));
                    }
                }
            }
            other => errors.push(format!("{path}: expected a string, got {other}")),
        },
        Value::Number(expected) => {
            let integral = |n: &serde_json::Number| n.is_i64() || n.is_u64();
            match actual {
                Value::Number(number) if !integral(expected) || integral(number) => {}
                other => errors.push(format!("{path}: expected a number like {expected}, got {other}")),
            }
        }
        Value::Bool(_) => {
            if !actual.is_boolean() {
                errors.push(format!("{path}: expected a boolean, got {actual}"));
            }
        }
    }
}

#[test]
fn the_shape_checker_reports_missing_and_extra_keys_wrong_types_and_values_outside_the_set() {
    let example = &documented("GET /api/tickets")["data"];
    let mut ticket = example["tickets"][0].clone();
    ticket.as_object_mut().unwrap().remove("lastProcessor");
    ticket["priority"] = json!("high");
    ticket["status"] = json!("PROCESSING");
    ticket["createdAt"] = json!("2026-01-28 00:00:00");
    ticket["updatedAt"] = json!("2026-01-29T18:00:00+08:00");
    let actual = json!({ "tickets": [ticket], "total": "50", "page": 1, "pageSize": 10 });
    let mut errors = Vec::new();
    shape_errors(&actual, example, None, "data", &mut errors);
    let report = errors.join("\n");
    for expected in [
        "data.tickets[0]: missing keys [\"lastProcessor\"]",
        "data.tickets[0]: extra keys [\"priority\"]",
        "data.tickets[0].status: `PROCESSING`",
        "data.tickets[0].createdAt:",
        "data.tickets[0].updatedAt:",
        "data.total: expected a number",
    ] {
        assert!(report.contains(expected), "the report names `{expected}`:\n{report}");
    }
    assert_eq!(errors.len(), 6, "{report}");
    // And the example itself passes.
    assert_same_shape(example, example, "data");
}

// --- talking to the server ---

/// A REST call, checked to answer JSON as every endpoint does, whatever the status.
async fn call(app: &TestApp, token: Option<&str>, request: &Request) -> Answer {
    let answer = app.send(token, request).await;
    let (method, path, status) = (request.method, &request.path, answer.status);
    assert!(answer.is_json(), "{method} {path}: the answer ({status}) is JSON: {}", answer.text);
    answer
}

async fn get(app: &TestApp, token: Option<&str>, path: &str) -> Answer {
    call(app, token, &Request::get(path)).await
}

async fn post(app: &TestApp, token: Option<&str>, path: &str, body: Value) -> Answer {
    call(app, token, &Request::post(path, body)).await
}

/// A POST whose body is sent as written, declared as JSON.
async fn post_text(app: &TestApp, token: Option<&str>, path: &str, body: &'static str) -> Answer {
    call(app, token, &Request::post_raw(path, body)).await
}

/// Asserts the documented success of `route` (HTTP 200, code 200, the spec's message, `data` of
/// the spec's shape) and returns `data`.
fn assert_documented(answer: &Answer, route: &str) -> Value {
    let example = documented(route);
    let body = &answer.body;
    assert_eq!(answer.status, 200, "{route}: {body}");
    let keys: Vec<&String> = body.as_object().map(|o| o.keys().collect()).unwrap_or_default();
    assert_eq!(keys, ["code", "message", "data"], "{route}: the envelope: {body}");
    assert_eq!(body["code"], 200, "{route}: {body}");
    assert_eq!(body["message"], example["message"], "{route}: the documented message: {body}");
    let mut data = body["data"].clone();
    if route == "POST /api/auth/login" {
        // The documented decision: login also hands out the refresh token that 3.1.3 takes.
        let refresh = data.as_object_mut().and_then(|data| data.remove("refreshToken"));
        assert!(refresh.as_ref().and_then(Value::as_str).is_some_and(|r| !r.is_empty()), "{body}");
    }
    assert_same_shape(&data, &example["data"], "data");
    body["data"].clone()
}

/// Asserts an error envelope: the HTTP status equals `code`, `data` is null, and the message is
/// Chinese. Returns the message.
fn assert_failure(answer: &Answer, status: u16, context: &str) -> String {
    let body = &answer.body;
    assert_eq!(answer.status, status, "{context}: {body}");
    assert_eq!(body["code"], status, "{context}: the body's code is the HTTP status: {body}");
    assert!(body.get("data").is_some_and(Value::is_null), "{context}: data is null: {body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(has_chinese(message), "{context}: a Chinese message: {body}");
    message.to_owned()
}

/// Asserts a 400 whose message names the parameter.
fn assert_bad_parameter(answer: &Answer, parameter: &str, context: &str) {
    let message = assert_failure(answer, 400, context);
    assert!(message.contains(parameter), "{context}: the message names {parameter}: {message}");
}

fn items<'a>(data: &'a Value, field: &str) -> &'a Vec<Value> {
    data[field].as_array().unwrap_or_else(|| panic!("{field} is an array in {data}"))
}

/// Signs in over REST and returns the access token and the refresh token.
async fn rest_login(app: &TestApp, username: &str) -> (String, String) {
    let answer = post(app, None, "/api/auth/login", json!({ "username": username, "password": DEMO_PASSWORD })).await;
    let data = assert_documented(&answer, "POST /api/auth/login");
    (str_of(&data, "token").to_owned(), str_of(&data, "refreshToken").to_owned())
}

/// The `data` of a GET that must succeed.
async fn fetch(app: &TestApp, token: &str, path: &str) -> Value {
    let answer = get(app, Some(token), path).await;
    assert_eq!(answer.status, 200, "{path}: {}", answer.body);
    answer.body["data"].clone()
}

async fn ticket_total(app: &TestApp, token: &str) -> u64 {
    fetch(app, token, "/api/tickets?pageSize=1").await["total"].as_u64().expect("a total")
}

/// What a refused call could have changed for a provider: its tickets, one ticket in full, one
/// conversation and its messages.
async fn snapshot(app: &TestApp, token: &str, customer: &str, ticket: &str) -> Value {
    let messages = fetch(app, token, "/api/messages?pageSize=1").await;
    json!({
        "tickets": ticket_total(app, token).await,
        "ticket": fetch(app, token, &format!("/api/tickets/{ticket}")).await,
        "chat": fetch(app, token, &format!("/api/chat/messages?customerId={customer}&pageSize=1")).await["total"],
        "messages": messages["total"],
        "unread": messages["unreadCount"],
    })
}

async fn demo_a_snapshot(app: &TestApp, token: &str) -> Value {
    snapshot(app, token, "c001", "t001").await
}

/// Every endpoint that addresses one record, called well-formed for the given ids.
fn calls_on(customer: &str, ticket: &str, message: &str) -> Vec<Request> {
    vec![
        Request::get(format!("/api/customers/{customer}")),
        Request::get(format!("/api/customers/{customer}/tickets")),
        Request::get(format!("/api/customers/{customer}/usage-score")),
        Request::get(format!("/api/tickets/{ticket}")),
        Request::post(
            "/api/tickets",
            json!({ "customerId": customer, "title": "打印机无法连接", "content": "出库单打印失败", "type": "system_issue" }),
        ),
        Request::post(format!("/api/tickets/{ticket}/reply"), json!({ "content": "正在处理" })),
        Request::post(format!("/api/tickets/{ticket}/resolve"), json!({ "resolution": "已处理" })),
        Request::post(format!("/api/tickets/{ticket}/escalate"), json!({ "reason": "需要技术支持" })),
        Request::get(format!("/api/messages/{message}")),
        Request::post(format!("/api/messages/{message}/read"), json!({})),
        Request::get(format!("/api/chat/messages?customerId={customer}")),
        Request::post("/api/chat/send", json!({ "customerId": customer, "content": "您好" })),
        Request::post(
            "/api/chat/escalate",
            json!({ "customerId": customer, "content": "聊天摘要", "reason": "无法远程解决" }),
        ),
    ]
}

/// Every endpoint that needs a token (all but login and refresh), called well-formed for demo-a.
fn signed_in_calls() -> Vec<Request> {
    let mut calls = calls_on("c001", "t001", "m001");
    calls.extend([
        Request::get("/api/customers"),
        Request::get("/api/tickets"),
        Request::get("/api/messages"),
        Request::post("/api/messages/read-all", json!({})),
        Request::post("/api/auth/logout", json!({})),
    ]);
    calls
}

/// The token with its payload rewritten to claim another provider, the signature kept.
fn tampered(token: &str) -> String {
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT: {token}");
    let mut claims: Value = serde_json::from_slice(&engine.decode(parts[1]).expect("base64url")).expect("JSON claims");
    claims["sub"] = json!("sp002");
    format!("{}.{}.{}", parts[0], engine.encode(serde_json::to_vec(&claims).unwrap()), parts[2])
}

/// Asserts that every call that needs a token answers 401 with `token`, and changed nothing.
async fn assert_every_call_unauthenticated(app: &TestApp, token: Option<&str>, context: &str) {
    let control = app.login(DEMO_A).await;
    let before = demo_a_snapshot(app, &control).await;
    for request in signed_in_calls() {
        let answer = call(app, token, &request).await;
        assert_failure(&answer, 401, &format!("{context}: {} {}", request.method, request.path));
    }
    assert_eq!(demo_a_snapshot(app, &control).await, before, "{context}: nothing changed");
}

// --- 3.1 auth ---

#[tokio::test]
async fn logging_in_returns_a_working_token_and_the_providers_profile() {
    let app = TestApp::spawn().await;
    let (token, refresh) = rest_login(&app, DEMO_A).await;
    let answer = post(&app, None, "/api/auth/login", json!({ "username": DEMO_A, "password": DEMO_PASSWORD })).await;
    let data = assert_documented(&answer, "POST /api/auth/login");
    assert_eq!(data["userInfo"]["id"], "sp001");
    assert_eq!(data["userInfo"]["contactPerson"], "张三");
    assert_ne!(token, refresh);
    assert_eq!(get(&app, Some(&token), "/api/customers").await.status, 200);
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_are_refused_alike() {
    let app = TestApp::spawn().await;
    let wrong_password =
        post(&app, None, "/api/auth/login", json!({ "username": DEMO_A, "password": "wrong-pw" })).await;
    let unknown_user =
        post(&app, None, "/api/auth/login", json!({ "username": "nobody", "password": DEMO_PASSWORD })).await;
    let first = assert_failure(&wrong_password, 401, "wrong password");
    let second = assert_failure(&unknown_user, 401, "unknown user");
    assert_eq!(first, second, "nothing tells which one was wrong");
}

#[tokio::test]
async fn logging_out_with_the_token_in_the_body_ends_the_session_and_its_refresh_token() {
    let app = TestApp::spawn().await;
    let (token, refresh) = rest_login(&app, DEMO_A).await;
    let answer = post(&app, None, "/api/auth/logout", json!({ "token": token })).await;
    let data = assert_documented(&answer, "POST /api/auth/logout");
    assert_eq!(data["success"], true);
    assert_every_call_unauthenticated(&app, Some(&token), "after logout").await;
    let again = post(&app, None, "/api/auth/refresh", json!({ "refreshToken": refresh })).await;
    assert_failure(&again, 401, "the logged-out session's refresh token");
}

#[tokio::test]
async fn logging_out_with_only_the_authorization_header_ends_the_session() {
    let app = TestApp::spawn().await;
    let (token, refresh) = rest_login(&app, DEMO_A).await;
    let other = app.login(DEMO_A).await;
    let answer = post(&app, Some(&token), "/api/auth/logout", json!({})).await;
    assert_eq!(assert_documented(&answer, "POST /api/auth/logout")["success"], true);
    assert_every_call_unauthenticated(&app, Some(&token), "after logout").await;
    let again = post(&app, None, "/api/auth/refresh", json!({ "refreshToken": refresh })).await;
    assert_failure(&again, 401, "the logged-out session's refresh token");
    assert_eq!(get(&app, Some(&other), "/api/tickets").await.status, 200, "another session lives on");
}

#[tokio::test]
async fn refreshing_returns_a_new_pair_that_works() {
    let app = TestApp::spawn().await;
    let (token, refresh) = rest_login(&app, DEMO_A).await;
    let answer = post(&app, None, "/api/auth/refresh", json!({ "refreshToken": refresh })).await;
    let data = assert_documented(&answer, "POST /api/auth/refresh");
    let (new_token, new_refresh) = (str_of(&data, "token"), str_of(&data, "refreshToken"));
    assert_ne!(new_token, token);
    assert_ne!(new_refresh, refresh);
    assert_eq!(get(&app, Some(new_token), "/api/customers").await.status, 200);
    let next = post(&app, None, "/api/auth/refresh", json!({ "refreshToken": new_refresh })).await;
    assert_documented(&next, "POST /api/auth/refresh");
}

#[tokio::test]
async fn a_reused_refresh_token_revokes_its_whole_family() {
    let app = TestApp::spawn_configured(&[("REFRESH_REUSE_GRACE_SECONDS", "0")]).await; // reuse at once: no grace (see refresh_retry)
    let (first_token, first_refresh) = rest_login(&app, DEMO_A).await;
    let answer = post(&app, None, "/api/auth/refresh", json!({ "refreshToken": first_refresh })).await;
    let data = assert_documented(&answer, "POST /api/auth/refresh");
    let (token, refresh) = (str_of(&data, "token"), str_of(&data, "refreshToken"));
    assert_eq!(get(&app, Some(token), "/api/customers").await.status, 200);

    // The old refresh token comes back: someone copied it.
    let reused = post(&app, None, "/api/auth/refresh", json!({ "refreshToken": first_refresh })).await;
    assert_failure(&reused, 401, "the used refresh token");
    let newest = post(&app, None, "/api/auth/refresh", json!({ "refreshToken": refresh })).await;
    assert_failure(&newest, 401, "the newest refresh token of the family");
    assert_failure(&get(&app, Some(token), "/api/customers").await, 401, "the newest access token");
    assert_failure(&get(&app, Some(&first_token), "/api/customers").await, 401, "the first access token");
}

#[tokio::test]
async fn an_unknown_refresh_token_is_refused() {
    let app = TestApp::spawn().await;
    let answer = post(&app, None, "/api/auth/refresh", json!({ "refreshToken": "no-such-refresh-token" })).await;
    assert_failure(&answer, 401, "an unknown refresh token");
}

#[tokio::test]
async fn the_auth_endpoints_name_a_missing_or_wrongly_typed_parameter() {
    let app = TestApp::spawn().await;
    let cases = [
        ("/api/auth/login", json!({ "password": DEMO_PASSWORD }), "username"),
        ("/api/auth/login", json!({ "username": DEMO_A }), "password"),
        ("/api/auth/login", json!({ "username": DEMO_A, "password": 12345 }), "password"),
        ("/api/auth/login", json!({ "username": ["demo-a"], "password": DEMO_PASSWORD }), "username"),
        ("/api/auth/refresh", json!({}), "refreshToken"),
        ("/api/auth/refresh", json!({ "refreshToken": 42 }), "refreshToken"),
        ("/api/auth/logout", json!({ "token": 42 }), "token"),
    ];
    let token = app.login(DEMO_A).await;
    for (path, body, parameter) in cases {
        let answer = post(&app, Some(&token), path, body.clone()).await;
        assert_bad_parameter(&answer, parameter, &format!("{path} {body}"));
    }
    assert_eq!(get(&app, Some(&token), "/api/customers").await.status, 200, "the session survived");
}

#[tokio::test]
async fn every_endpoint_but_login_and_refresh_refuses_a_request_without_a_token() {
    let app = TestApp::spawn().await;
    assert_every_call_unauthenticated(&app, None, "no token").await;
}

#[tokio::test]
async fn every_endpoint_refuses_a_tampered_token() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let forged = tampered(&token);
    assert_ne!(forged, token);
    assert_eq!(get(&app, Some(&token), "/api/customers").await.status, 200, "the untouched token works");
    assert_every_call_unauthenticated(&app, Some(&forged), "tampered token").await;
}

// --- 3.2 customers ---

#[tokio::test]
async fn the_customer_list_defaults_to_the_first_ten_of_the_providers_thirty() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let data = assert_documented(&get(&app, Some(&token), "/api/customers").await, "GET /api/customers");
    assert_eq!(
        (data["page"].clone(), data["pageSize"].clone(), data["total"].clone()),
        (json!(1), json!(10), json!(30))
    );
    let customers = items(&data, "customers");
    assert_eq!(customers.len(), 10);
    let own: Vec<String> = (1..=30).map(|n| format!("c{n:03}")).collect();
    for customer in customers {
        assert!(own.iter().any(|id| id == str_of(customer, "id")), "demo-a's own customer: {customer}");
    }
    let second = fetch(&app, &token, "/api/customers?page=2&pageSize=5").await;
    assert_eq!((second["page"].clone(), second["pageSize"].clone()), (json!(2), json!(5)));
    assert_eq!(items(&second, "customers").len(), 5);
    assert_eq!(items(&second, "customers")[0], customers[5], "page 2 of 5 starts where page 1 of 10 is halfway");
}

#[tokio::test]
async fn the_customer_list_filters_by_status_and_keyword() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let mut sum = 0;
    for status in ["active", "expiring", "expired"] {
        let answer = get(&app, Some(&token), &format!("/api/customers?status={status}&pageSize=100")).await;
        let data = assert_documented(&answer, "GET /api/customers");
        let customers = items(&data, "customers");
        assert!(!customers.is_empty(), "the demo data has {status} customers");
        assert_eq!(data["total"].as_u64(), Some(customers.len() as u64));
        for customer in customers {
            assert_eq!(customer["status"], status, "only {status}: {customer}");
        }
        sum += customers.len();
    }
    assert_eq!(sum, 30, "the three statuses cover every customer");

    let c001 = fetch(&app, &token, "/api/customers/c001").await;
    let name = str_of(&c001, "name");
    let data = fetch(&app, &token, &format!("/api/customers?keyword={name}&pageSize=100")).await;
    let found = items(&data, "customers");
    assert!(found.iter().any(|c| c["id"] == "c001"), "c001 is found by its name: {data}");
    assert!(found.len() < 30, "the keyword narrows the list");
    for customer in found {
        assert_eq!(customer["name"], name, "{customer}");
    }
}

#[tokio::test]
async fn the_customer_detail_has_every_documented_field() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let answer = get(&app, Some(&token), "/api/customers/c001").await;
    let data = assert_documented(&answer, "GET /api/customers/:id");
    assert_eq!(data["id"], "c001");
    assert_eq!(data["serviceProviderId"], "sp001");
    let listed = fetch(&app, &token, "/api/customers?pageSize=100").await;
    let in_list = items(&listed, "customers").iter().find(|c| c["id"] == "c001").expect("c001 is listed").clone();
    for (field, value) in in_list.as_object().unwrap() {
        let full = data[field].as_str().unwrap_or_default();
        match field.as_str() {
            // The list masks contact details (spec 6.2); the detail shows them in full.
            "phone" => assert_eq!(&json!(provider_desk::domain::masking::mask_phone(full)), value),
            "email" => assert_eq!(&json!(provider_desk::domain::masking::mask_email(full)), value),
            _ => assert_eq!(&data[field], value, "the detail agrees with the list on {field}"),
        }
    }
}

#[tokio::test]
async fn a_customers_tickets_default_to_the_first_ten_and_filter_by_status() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let all = fetch(&app, &token, "/api/tickets?pageSize=100").await;
    let all = items(&all, "tickets");
    // The customer with the most tickets.
    let customer = all
        .iter()
        .map(|t| str_of(t, "customerId"))
        .max_by_key(|id| all.iter().filter(|t| t["customerId"] == *id).count())
        .expect("tickets")
        .to_owned();
    let theirs: Vec<&Value> = all.iter().filter(|t| t["customerId"] == customer).collect();
    assert!(theirs.len() >= 2, "a customer with several tickets");

    let answer = get(&app, Some(&token), &format!("/api/customers/{customer}/tickets")).await;
    let data = assert_documented(&answer, "GET /api/customers/:id/tickets");
    assert_eq!((data["page"].clone(), data["pageSize"].clone()), (json!(1), json!(10)));
    assert_eq!(data["total"].as_u64(), Some(theirs.len() as u64));
    for ticket in items(&data, "tickets") {
        assert!(theirs.iter().any(|t| t["id"] == ticket["id"]), "only {customer}'s tickets: {ticket}");
    }

    let status = str_of(theirs[0], "status");
    let path = format!("/api/customers/{customer}/tickets?status={status}");
    let data = assert_documented(&get(&app, Some(&token), &path).await, "GET /api/customers/:id/tickets");
    let expected = theirs.iter().filter(|t| t["status"] == status).count();
    assert_eq!(data["total"].as_u64(), Some(expected as u64), "{path}");
    for ticket in items(&data, "tickets") {
        assert_eq!(ticket["status"], status, "{ticket}");
    }
}

#[tokio::test]
async fn the_usage_score_has_the_four_measures_and_suggestions() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let answer = get(&app, Some(&token), "/api/customers/c001/usage-score").await;
    let data = assert_documented(&answer, "GET /api/customers/:id/usage-score");
    assert_eq!(data["customerId"], "c001");
    let customer = fetch(&app, &token, "/api/customers/c001").await;
    assert_eq!(data["customerName"], customer["name"]);
    assert_eq!(data["totalScore"], customer["usageScore"]);
    for (measure, score) in customer["usageScoreDetails"].as_object().unwrap() {
        assert_eq!(&data["scoreDetails"][measure]["score"], score, "{measure}");
    }
    let levels = ["高", "中高", "中", "低"];
    assert!(levels.contains(&str_of(&data, "scoreLevel")), "{data}");
}

// --- 3.3 tickets ---

#[tokio::test]
async fn the_ticket_list_defaults_to_the_first_ten_and_filters_by_status_and_type() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let data = assert_documented(&get(&app, Some(&token), "/api/tickets").await, "GET /api/tickets");
    assert_eq!(
        (data["page"].clone(), data["pageSize"].clone(), data["total"].clone()),
        (json!(1), json!(10), json!(36))
    );
    assert_eq!(items(&data, "tickets").len(), 10);

    let all = fetch(&app, &token, "/api/tickets?pageSize=100").await;
    let expected =
        items(&all, "tickets").iter().filter(|t| t["status"] == "processing" && t["type"] == "system_issue").count();
    assert!(expected > 0, "the demo data has processing system issues");
    let answer = get(&app, Some(&token), "/api/tickets?status=processing&type=system_issue").await;
    let data = assert_documented(&answer, "GET /api/tickets");
    assert_eq!(data["total"].as_u64(), Some(expected as u64));
    for ticket in items(&data, "tickets") {
        assert_eq!((ticket["status"].clone(), ticket["type"].clone()), (json!("processing"), json!("system_issue")));
    }
}

#[tokio::test]
async fn the_ticket_detail_has_its_processing_history() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let data = assert_documented(&get(&app, Some(&token), "/api/tickets/t001").await, "GET /api/tickets/:id");
    assert_eq!((data["id"].clone(), data["serviceProviderId"].clone()), (json!("t001"), json!("sp001")));
    assert!(data["resolvedAt"].is_null(), "an unresolved ticket: {data}");
    assert!(!items(&data, "processingHistory").is_empty());
    // A resolved one has its resolution time.
    let resolved = fetch(&app, &token, "/api/tickets?status=resolved&pageSize=1").await;
    let id = str_of(&items(&resolved, "tickets")[0], "id").to_owned();
    let data = assert_documented(&get(&app, Some(&token), &format!("/api/tickets/{id}")).await, "GET /api/tickets/:id");
    assert!(data["resolvedAt"].is_string(), "{data}");
}

#[tokio::test]
async fn creating_a_ticket_opens_it_for_the_customer() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let before = ticket_total(&app, &token).await;
    let body = json!({ "customerId": "c001", "title": "产品功能建议", "content": "希望支持批量导入", "type": "product_suggestion" });
    let data = assert_documented(&post(&app, Some(&token), "/api/tickets", body).await, "POST /api/tickets");
    assert_eq!(data["customerId"], "c001");
    assert_eq!((data["type"].clone(), data["status"].clone()), (json!("product_suggestion"), json!("open")));
    assert_eq!(data["title"], "产品功能建议");
    assert_eq!(ticket_total(&app, &token).await, before + 1);
    let detail = fetch(&app, &token, &format!("/api/tickets/{}", str_of(&data, "ticketId"))).await;
    assert_eq!(detail["content"], "希望支持批量导入");
}

#[tokio::test]
async fn replying_to_a_ticket_records_the_reply_in_its_history() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let before = fetch(&app, &token, "/api/tickets/t001").await;
    let body = json!({ "content": "已收到您的问题，我们正在处理中" });
    let answer = post(&app, Some(&token), "/api/tickets/t001/reply", body).await;
    let data = assert_documented(&answer, "POST /api/tickets/:id/reply");
    assert_eq!((data["ticketId"].clone(), data["operatorId"].clone()), (json!("t001"), json!("sp001")));
    assert_eq!(data["content"], "已收到您的问题，我们正在处理中");
    let after = fetch(&app, &token, "/api/tickets/t001").await;
    let history = items(&after, "processingHistory");
    assert_eq!(history.len(), items(&before, "processingHistory").len() + 1);
    let last = history.last().unwrap();
    assert_eq!((last["id"].clone(), last["content"].clone()), (data["replyId"].clone(), data["content"].clone()));
    assert_eq!(after["status"], "processing");
}

#[tokio::test]
async fn resolving_a_ticket_marks_it_resolved_with_its_resolution() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    assert_ne!(fetch(&app, &token, "/api/tickets/t001").await["status"], "resolved");
    let body = json!({ "resolution": "已重置密码，问题已解决" });
    let answer = post(&app, Some(&token), "/api/tickets/t001/resolve", body).await;
    let data = assert_documented(&answer, "POST /api/tickets/:id/resolve");
    assert_eq!((data["ticketId"].clone(), data["status"].clone()), (json!("t001"), json!("resolved")));
    assert_eq!(data["resolution"], "已重置密码，问题已解决");
    let after = fetch(&app, &token, "/api/tickets/t001").await;
    assert_eq!((after["status"].clone(), after["resolvedAt"].clone()), (json!("resolved"), data["resolvedAt"].clone()));
}

#[tokio::test]
async fn escalating_a_ticket_marks_it_escalated_and_notifies() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let ticket = fetch(&app, &token, "/api/tickets/t002").await;
    assert_eq!((ticket["escalationStatus"].clone(), ticket["status"].clone()), (json!("normal"), json!("processing")));
    let body = json!({ "reason": "技术复杂度较高，需要专业技术支持" });
    let answer = post(&app, Some(&token), "/api/tickets/t002/escalate", body.clone()).await;
    let data = assert_documented(&answer, "POST /api/tickets/:id/escalate");
    assert_eq!((data["ticketId"].clone(), data["escalationStatus"].clone()), (json!("t002"), json!("escalated")));
    // No PC customer-service system is configured here, so none is notified (tests/integration.rs
    // checks `true`, with the notification queued, against a configured one).
    assert_eq!((data["reason"].clone(), data["notificationSent"].clone()), (body["reason"].clone(), json!(false)));
    assert_eq!(fetch(&app, &token, "/api/tickets/t002").await["escalationStatus"], "escalated");
}

#[tokio::test]
async fn resolving_a_resolved_or_escalating_an_escalated_ticket_is_a_conflict_that_changes_nothing() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let resolved = fetch(&app, &token, "/api/tickets?status=resolved&pageSize=1").await;
    let resolved = str_of(&items(&resolved, "tickets")[0], "id").to_owned();
    // The escalation of t002 is the documented first one; the second is the conflict.
    let first = post(&app, Some(&token), "/api/tickets/t002/escalate", json!({ "reason": "需要技术支持" })).await;
    assert_documented(&first, "POST /api/tickets/:id/escalate");
    // (the case, the ticket, the action, its body)
    let cases = [
        ("resolving a resolved ticket", resolved.as_str(), "resolve", json!({ "resolution": "再次" })),
        ("escalating an escalated ticket", "t002", "escalate", json!({ "reason": "再次升级" })),
    ];
    for (case, id, action, body) in cases {
        let before = snapshot(&app, &token, "c001", id).await;
        let answer = post(&app, Some(&token), &format!("/api/tickets/{id}/{action}"), body).await;
        assert_failure(&answer, 409, case);
        assert_eq!(snapshot(&app, &token, "c001", id).await, before, "{case}: nothing changed");
    }
}

#[tokio::test]
async fn ticket_mutations_refuse_missing_or_wrongly_typed_parameters_and_change_nothing() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let before = demo_a_snapshot(&app, &token).await;
    let create = json!({ "customerId": "c001", "title": "标题", "content": "内容", "type": "complaint" });
    let mut cases = Vec::new();
    for field in ["customerId", "title", "content", "type"] {
        let mut body = create.clone();
        body.as_object_mut().unwrap().remove(field);
        cases.push(("/api/tickets", body, field));
        let mut body = create.clone();
        body[field] = json!(5);
        cases.push(("/api/tickets", body, field));
    }
    let mut body = create.clone();
    body["type"] = json!("bogus");
    cases.push(("/api/tickets", body, "type"));
    let mut body = create.clone();
    body["type"] = json!("COMPLAINT");
    cases.push(("/api/tickets", body, "type"));
    cases.extend([
        ("/api/tickets/t001/reply", json!({}), "content"),
        ("/api/tickets/t001/reply", json!({ "content": 5 }), "content"),
        ("/api/tickets/t001/resolve", json!({ "resolution": ["已解决"] }), "resolution"),
        ("/api/tickets/t001/escalate", json!({}), "reason"),
        ("/api/tickets/t001/escalate", json!({ "reason": true }), "reason"),
    ]);
    for (path, body, parameter) in cases {
        let answer = post(&app, Some(&token), path, body.clone()).await;
        assert_bad_parameter(&answer, parameter, &format!("{path} {body}"));
    }
    for (path, body) in [
        ("/api/tickets", json!({ "customerId": "c001", "title": "", "content": "内容", "type": "complaint" })),
        ("/api/tickets/t001/reply", json!({ "content": "   " })),
    ] {
        assert_failure(&post(&app, Some(&token), path, body.clone()).await, 400, &format!("{path} {body}"));
    }
    assert_eq!(demo_a_snapshot(&app, &token).await, before);
}

// --- 3.4 messages ---

#[tokio::test]
async fn the_message_list_defaults_to_the_first_ten_with_the_unread_count() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let data = assert_documented(&get(&app, Some(&token), "/api/messages").await, "GET /api/messages");
    assert_eq!((data["page"].clone(), data["pageSize"].clone()), (json!(1), json!(10)));
    assert_eq!(items(&data, "messages").len(), 10);
    let total = data["total"].as_u64().expect("a total");
    let unread = data["unreadCount"].as_u64().expect("an unread count");
    assert!(unread > 0 && unread < total, "some but not all are unread: {unread} of {total}");

    let answer = get(&app, Some(&token), "/api/messages?readStatus=unread&pageSize=100").await;
    let data = assert_documented(&answer, "GET /api/messages");
    assert_eq!(data["total"].as_u64(), Some(unread), "the unread filter finds the unread count");
    assert_eq!(items(&data, "messages").len() as u64, unread);
    for message in items(&data, "messages") {
        assert_eq!(message["readStatus"], "unread", "{message}");
    }

    let answer = get(&app, Some(&token), "/api/messages?type=customer_alert&readStatus=unread").await;
    let data = assert_documented(&answer, "GET /api/messages");
    assert!(data["total"].as_u64().is_some_and(|n| n > 0), "the demo data has unread customer alerts");
    for message in items(&data, "messages") {
        assert_eq!(
            (message["type"].clone(), message["readStatus"].clone()),
            (json!("customer_alert"), json!("unread"))
        );
    }
}

#[tokio::test]
async fn the_message_detail_belongs_to_the_provider() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let data = assert_documented(&get(&app, Some(&token), "/api/messages/m001").await, "GET /api/messages/:id");
    assert_eq!((data["id"].clone(), data["serviceProviderId"].clone()), (json!("m001"), json!("sp001")));
    assert_eq!(data["relatedTicketId"], "t001");
}

#[tokio::test]
async fn marking_a_message_read_lowers_the_unread_count_by_one() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let unread = fetch(&app, &token, "/api/messages?readStatus=unread&pageSize=1").await;
    let id = str_of(&items(&unread, "messages")[0], "id").to_owned();
    let count = unread["unreadCount"].as_u64().expect("an unread count");
    let answer = post(&app, Some(&token), &format!("/api/messages/{id}/read"), json!({})).await;
    let data = assert_documented(&answer, "POST /api/messages/:id/read");
    assert_eq!((data["messageId"].clone(), data["readStatus"].clone()), (json!(id), json!("read")));
    assert_eq!(fetch(&app, &token, &format!("/api/messages/{id}")).await["readStatus"], "read");
    let after = fetch(&app, &token, "/api/messages?pageSize=1").await;
    assert_eq!(after["unreadCount"].as_u64(), Some(count - 1));
}

#[tokio::test]
async fn marking_all_messages_read_reports_how_many_were_unread() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let unread = fetch(&app, &token, "/api/messages?pageSize=1").await["unreadCount"].clone();
    assert!(unread.as_u64().is_some_and(|n| n > 0));
    let answer = post(&app, Some(&token), "/api/messages/read-all", json!({})).await;
    let data = assert_documented(&answer, "POST /api/messages/read-all");
    assert_eq!((data["success"].clone(), data["markedCount"].clone()), (json!(true), unread));
    assert_eq!(fetch(&app, &token, "/api/messages?pageSize=1").await["unreadCount"], 0);
    let again = post(&app, Some(&token), "/api/messages/read-all", json!({})).await;
    assert_eq!(assert_documented(&again, "POST /api/messages/read-all")["markedCount"], 0);
}

// --- 3.5 chat ---

#[tokio::test]
async fn the_chat_history_defaults_to_the_latest_twenty_messages() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let answer = get(&app, Some(&token), "/api/chat/messages?customerId=c001").await;
    let data = assert_documented(&answer, "GET /api/chat/messages");
    assert_eq!((data["page"].clone(), data["pageSize"].clone()), (json!(1), json!(20)));
    let seeded = data["total"].as_u64().expect("a total");
    assert!(seeded > 0 && seeded < 20, "c001 has a short seeded conversation: {data}");
    for message in items(&data, "messages") {
        assert_eq!(
            (message["customerId"].clone(), message["serviceProviderId"].clone()),
            (json!("c001"), json!("sp001"))
        );
    }

    let extra = 21 - seeded;
    for n in 0..extra {
        let body = json!({ "customerId": "c001", "content": format!("第{n}条消息") });
        assert_eq!(post(&app, Some(&token), "/api/chat/send", body).await.status, 200);
    }
    let answer = get(&app, Some(&token), "/api/chat/messages?customerId=c001").await;
    let data = assert_documented(&answer, "GET /api/chat/messages");
    assert_eq!(data["total"], 21);
    let latest = items(&data, "messages");
    assert_eq!(latest.len(), 20, "the default page holds twenty");
    assert_eq!(latest.last().unwrap()["content"], format!("第{}条消息", extra - 1), "page 1 ends with the newest");
    let second = fetch(&app, &token, "/api/chat/messages?customerId=c001&page=2").await;
    assert_eq!(items(&second, "messages").len(), 1);
}

#[tokio::test]
async fn sending_a_chat_message_adds_it_to_the_conversation() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let before = fetch(&app, &token, "/api/chat/messages?customerId=c001").await["total"].as_u64().unwrap();
    let body = json!({ "customerId": "c001", "content": "请尝试重置密码，操作步骤如下：..." });
    let data = assert_documented(&post(&app, Some(&token), "/api/chat/send", body).await, "POST /api/chat/send");
    assert_eq!((data["senderType"].clone(), data["status"].clone()), (json!("service_provider"), json!("sent")));
    assert_eq!(
        (data["customerId"].clone(), data["content"].clone()),
        (json!("c001"), json!("请尝试重置密码，操作步骤如下：..."))
    );
    let after = fetch(&app, &token, "/api/chat/messages?customerId=c001").await;
    assert_eq!(after["total"].as_u64(), Some(before + 1));
    assert_eq!(items(&after, "messages").last().unwrap()["id"], data["messageId"]);
}

#[tokio::test]
async fn escalating_a_chat_opens_an_escalated_ticket() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let before = ticket_total(&app, &token).await;
    let body = json!({ "customerId": "c001", "content": "客户反复登录失败，聊天记录见附件", "reason": "无法远程解决" });
    let data =
        assert_documented(&post(&app, Some(&token), "/api/chat/escalate", body).await, "POST /api/chat/escalate");
    assert_eq!(data["customerId"], "c001");
    assert_eq!((data["type"].clone(), data["status"].clone()), (json!("issue_escalation"), json!("open")));
    assert_eq!((data["title"].clone(), data["escalationStatus"].clone()), (json!("聊天升级工单"), json!("escalated")));
    assert_eq!(ticket_total(&app, &token).await, before + 1);
    let ticket = fetch(&app, &token, &format!("/api/tickets/{}", str_of(&data, "ticketId"))).await;
    assert_eq!(ticket["content"], "客户反复登录失败，聊天记录见附件");
}

#[tokio::test]
async fn chat_endpoints_refuse_missing_or_wrongly_typed_parameters_and_change_nothing() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let before = demo_a_snapshot(&app, &token).await;
    let escalate = json!({ "customerId": "c001", "content": "摘要", "reason": "原因" });
    let mut cases = vec![
        ("/api/chat/send", json!({ "content": "您好" }), "customerId"),
        ("/api/chat/send", json!({ "customerId": "c001" }), "content"),
        ("/api/chat/send", json!({ "customerId": "c001", "content": 5 }), "content"),
        ("/api/chat/send", json!({ "customerId": 1, "content": "您好" }), "customerId"),
    ];
    for field in ["customerId", "content", "reason"] {
        let mut body = escalate.clone();
        body.as_object_mut().unwrap().remove(field);
        cases.push(("/api/chat/escalate", body, field));
        let mut body = escalate.clone();
        body[field] = json!({ "text": "x" });
        cases.push(("/api/chat/escalate", body, field));
    }
    for (path, body, parameter) in cases {
        let answer = post(&app, Some(&token), path, body.clone()).await;
        assert_bad_parameter(&answer, parameter, &format!("{path} {body}"));
    }
    let blank = post(&app, Some(&token), "/api/chat/send", json!({ "customerId": "c001", "content": "" })).await;
    assert_failure(&blank, 400, "an empty chat message");
    assert_eq!(demo_a_snapshot(&app, &token).await, before);
}

// --- errors across endpoints ---

#[tokio::test]
async fn list_endpoints_refuse_a_non_numeric_page_and_a_value_outside_the_set() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let cases = [
        ("/api/customers?pageSize=abc", "pageSize"),
        ("/api/customers?page=abc", "page"),
        ("/api/customers?status=bogus", "status"),
        ("/api/customers?status=ACTIVE", "status"),
        ("/api/customers/c001/tickets?pageSize=abc", "pageSize"),
        ("/api/customers/c001/tickets?status=bogus", "status"),
        ("/api/tickets?pageSize=abc", "pageSize"),
        ("/api/tickets?page=1.5", "page"),
        ("/api/tickets?status=bogus", "status"),
        ("/api/tickets?type=bogus", "type"),
        ("/api/messages?pageSize=abc", "pageSize"),
        ("/api/messages?type=bogus", "type"),
        ("/api/messages?readStatus=bogus", "readStatus"),
        ("/api/chat/messages", "customerId"),
        ("/api/chat/messages?customerId=c001&pageSize=abc", "pageSize"),
    ];
    for (path, parameter) in cases {
        assert_bad_parameter(&get(&app, Some(&token), path).await, parameter, path);
    }
    for path in ["/api/customers?pageSize=0", "/api/tickets?pageSize=101", "/api/messages?page=0"] {
        assert_failure(&get(&app, Some(&token), path).await, 400, path);
    }
}

#[tokio::test]
async fn a_body_that_is_not_json_is_refused_by_every_endpoint_that_reads_one() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let before = demo_a_snapshot(&app, &token).await;
    let paths = [
        "/api/auth/login",
        "/api/auth/refresh",
        "/api/auth/logout",
        "/api/tickets",
        "/api/tickets/t001/reply",
        "/api/tickets/t001/resolve",
        "/api/tickets/t001/escalate",
        "/api/chat/send",
        "/api/chat/escalate",
    ];
    for path in paths {
        for body in ["not json", "{\"content\": ", "[\"content\"]", "\"content\""] {
            assert_failure(&post_text(&app, Some(&token), path, body).await, 400, &format!("{path} {body:?}"));
        }
    }
    assert_eq!(demo_a_snapshot(&app, &token).await, before, "nothing changed and the session lives on");
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_as_too_large_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let before = demo_a_snapshot(&app, &token).await;
    let huge = "长".repeat(30 * 1024);
    for (path, body) in [
        ("/api/tickets", json!({ "customerId": "c001", "title": "过大", "content": huge, "type": "complaint" })),
        ("/api/chat/send", json!({ "customerId": "c001", "content": huge })),
    ] {
        assert_failure(&post(&app, Some(&token), path, body).await, 413, path);
    }
    assert_eq!(demo_a_snapshot(&app, &token).await, before);
}

#[tokio::test]
async fn unknown_ids_are_not_found_and_change_nothing() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let before = demo_a_snapshot(&app, &token).await;
    for request in calls_on("c999", "t999", "m999") {
        let answer = call(&app, Some(&token), &request).await;
        assert_failure(&answer, 404, &format!("{} {}", request.method, request.path));
    }
    assert_eq!(demo_a_snapshot(&app, &token).await, before);
}

#[tokio::test]
async fn another_providers_ids_are_not_found_as_if_unknown_and_nothing_of_theirs_changes() {
    let app = TestApp::spawn().await;
    let owner = app.login(DEMO_A).await;
    let other = app.login(DEMO_B).await;
    let before = demo_a_snapshot(&app, &owner).await;
    let others_tickets = ticket_total(&app, &other).await;
    let theirs = calls_on("c001", "t001", "m001");
    let unknown = calls_on("c999", "t999", "m999");
    for (request, unknown) in theirs.iter().zip(&unknown) {
        let context = format!("demo-b: {} {}", request.method, request.path);
        let message = assert_failure(&call(&app, Some(&other), request).await, 404, &context);
        let unknown_message = assert_failure(&call(&app, Some(&other), unknown).await, 404, &context);
        assert_eq!(message, unknown_message, "{context}: nothing tells that the id exists");
    }
    assert_eq!(demo_a_snapshot(&app, &owner).await, before);
    assert_eq!(ticket_total(&app, &other).await, others_tickets, "no ticket was opened for demo-b either");
}

#[tokio::test]
async fn an_unknown_api_path_answers_a_404_envelope() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    for request in [
        Request::get("/api/nothing-here"),
        Request::get("/api/customers/c001/orders"),
        Request::post("/api/tickets/t001/close", json!({})),
        Request::post("/api/v2/tickets", json!({})),
    ] {
        for token in [Some(token.as_str()), None] {
            let answer = call(&app, token, &request).await;
            assert_failure(&answer, 404, &format!("{} {}", request.method, request.path));
        }
    }
}

#[tokio::test]
async fn unknown_body_and_query_fields_are_ignored() {
    let app = TestApp::spawn().await;
    let login = json!({ "username": DEMO_A, "password": DEMO_PASSWORD, "rememberMe": true, "device": { "os": "ios" } });
    let token =
        str_of(&assert_documented(&post(&app, None, "/api/auth/login", login).await, "POST /api/auth/login"), "token")
            .to_owned();
    let create = json!({
        "customerId": "c001", "title": "额外字段", "content": "带有未知字段", "type": "complaint",
        "priority": "high", "status": "resolved", "id": "t999",
    });
    let data = assert_documented(&post(&app, Some(&token), "/api/tickets", create).await, "POST /api/tickets");
    assert_eq!(data["status"], "open", "the unknown status field does not set the status");
    assert_ne!(data["ticketId"], "t999");
    let send = json!({ "customerId": "c001", "content": "您好", "senderType": "customer" });
    let data = assert_documented(&post(&app, Some(&token), "/api/chat/send", send).await, "POST /api/chat/send");
    assert_eq!(data["senderType"], "service_provider");
    let read = post(&app, Some(&token), "/api/messages/m001/read", json!({ "readStatus": "unread" })).await;
    assert_eq!(assert_documented(&read, "POST /api/messages/:id/read")["readStatus"], "read");
    let list = get(&app, Some(&token), "/api/customers?sort=name&foo=bar").await;
    assert_eq!(assert_documented(&list, "GET /api/customers")["total"], 30);
}

// --- the OpenAPI document and the docs page ---

/// The errors of comparing a schema's property names with the example's keys, recursively.
fn property_errors(schema: &Value, example: &Value, path: &str, errors: &mut Vec<String>) {
    match example {
        Value::Object(expected) => {
            let Some(properties) = schema["properties"].as_object() else {
                return errors.push(format!("{path}: no properties in {schema}"));
            };
            let expected_keys: BTreeSet<&String> = expected.keys().collect();
            let listed: BTreeSet<&String> = properties.keys().collect();
            if listed != expected_keys {
                errors.push(format!("{path}: properties {listed:?}, the spec has {expected_keys:?}"));
            }
            for (key, value) in expected {
                if let Some(property) = properties.get(key) {
                    property_errors(property, value, &format!("{path}.{key}"), errors);
                }
            }
        }
        Value::Array(items) => property_errors(&schema["items"], &items[0], &format!("{path}[]"), errors),
        _ => {}
    }
}

/// `/api/tickets/:id/reply` as OpenAPI writes it: `/api/tickets/{id}/reply`.
fn openapi_path(path: &str) -> String {
    path.split('/')
        .map(|segment| segment.strip_prefix(':').map_or(segment.to_owned(), |name| format!("{{{name}}}")))
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn the_openapi_document_lists_exactly_the_spec_endpoints_with_their_data_shapes() {
    let app = TestApp::spawn().await;
    let response = app.client.get(format!("{}/api/openapi.json", app.address)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let document: Value = response.json().await.expect("JSON");
    let paths = document["paths"].as_object().expect("paths");

    let mut listed = BTreeSet::new();
    for (path, item) in paths {
        for method in item.as_object().expect("a path item").keys() {
            listed.insert((method.to_uppercase(), path.clone()));
        }
    }
    let documented_routes: BTreeSet<(String, String)> = EXAMPLES
        .keys()
        .map(|route| {
            let (method, path) = route.split_once(' ').unwrap();
            (method.to_owned(), openapi_path(path))
        })
        .collect();
    assert_eq!(documented_routes.len(), 22, "the spec's 20, #17's search and #18's typing");
    let additions: BTreeSet<(String, String)> = listed
        .iter()
        .filter(|(method, path)| paths[path][method.to_lowercase()]["x-addition"] == json!(true))
        .cloned()
        .collect();
    let spec_routes: BTreeSet<_> = listed.difference(&additions).cloned().collect();
    let expected_spec_routes: BTreeSet<_> = documented_routes.difference(&additions).cloned().collect();
    assert_eq!(expected_spec_routes.len(), 20, "the examples document the spec's twenty routes");
    assert_eq!(spec_routes, expected_spec_routes, "the spec's twenty routes, and none of them marked an addition");
    assert!(documented_routes.is_subset(&listed), "every documented route is served");

    let mut operation_ids = BTreeSet::new();
    let mut errors = Vec::new();
    for (route, example) in EXAMPLES.iter() {
        let (method, path) = route.split_once(' ').unwrap();
        let operation = &paths[&openapi_path(path)][method.to_lowercase()];
        let id = operation["operationId"].as_str().unwrap_or_default();
        assert!(!id.is_empty(), "{route} has an operationId");
        assert!(operation_ids.insert(id.to_owned()), "{route}: operationId {id} is unique");
        let success = &operation["responses"]["200"]["content"]["application/json"]["schema"];
        assert_eq!(success["properties"]["message"]["enum"], json!([example["message"]]), "{route}");
        let mut data = success["properties"]["data"].clone();
        if route == "POST /api/auth/login" {
            // The documented decision: login also hands out the refresh token.
            assert!(data["properties"].as_object_mut().unwrap().remove("refreshToken").is_some());
        }
        property_errors(&data, &example["data"], route, &mut errors);
    }
    assert!(errors.is_empty(), "data schemas differ from the spec:\n  {}", errors.join("\n  "));
}

/// The value of `attribute="..."` in an HTML tag.
fn attribute<'a>(tag: &'a str, attribute: &str) -> Option<&'a str> {
    let start = tag.find(&format!(" {attribute}=\""))? + attribute.len() + 3;
    tag[start..].split('"').next()
}

/// What a page loads: the `src` of its scripts and the `href` of its links.
fn loaded_assets(html: &str) -> Vec<String> {
    let mut assets = Vec::new();
    for (opening, name) in [("<script", "src"), ("<link", "href")] {
        for (start, _) in html.match_indices(opening) {
            let tag = &html[start..start + html[start..].find('>').expect("a closed tag")];
            assets.extend(attribute(tag, name).map(str::to_owned));
        }
    }
    assets
}

#[tokio::test]
async fn the_docs_page_loads_only_local_assets_that_are_served() {
    let app = TestApp::spawn().await;
    let response = app.client.get(format!("{}/api/docs", app.address)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()[reqwest::header::CONTENT_TYPE].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let html = response.text().await.unwrap();
    let assets = loaded_assets(&html);
    assert!(assets.iter().any(|a| a.ends_with(".js")), "a script: {assets:?}");
    assert!(assets.iter().any(|a| a.ends_with(".css")), "a stylesheet: {assets:?}");
    for asset in &assets {
        assert!(
            !asset.contains("http://") && !asset.contains("https://") && !asset.starts_with("//"),
            "local: {asset}"
        );
        let response = app.client.get(format!("{}{}", app.address, asset)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{asset}");
        assert!(!response.bytes().await.unwrap().is_empty(), "{asset} has content");
    }
}
