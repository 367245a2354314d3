//! Turning raw client input into domain values, with the error a person understands.
//!
//! The GraphQL resolvers (and so the REST shim) call these at the edge; below it only parsed
//! values travel.

use crate::domain::paging::PageError;
use crate::domain::text::TextError;
use crate::domain::{Id, PageRequest, Text, TextLimit, MAX_PAGE_SIZE};
use crate::error::{AppError, AppResult};

/// Parses an entity id; `field` is the parameter's name, `label` its Chinese name.
pub fn id(raw: &str, field: &'static str, label: &str) -> AppResult<Id> {
    Id::parse(raw).ok_or_else(|| AppError::bad_input(field, format!("{label}格式不正确")))
}

/// Parses a client-chosen idempotency key, if one was sent: like an id, 1 to 64 of
/// `A-Z a-z 0-9 _ -` (a UUID fits).
pub fn idempotency_key(raw: Option<&str>) -> AppResult<Option<Id>> {
    raw.map(|raw| {
        Id::parse(raw).ok_or_else(|| {
            AppError::bad_input("idempotencyKey", "幂等键格式不正确：应为1到64个字母、数字、下划线或连字符")
        })
    })
    .transpose()
}

/// Parses a required text field.
pub fn text(raw: &str, limit: TextLimit) -> AppResult<Text> {
    Text::parse(raw, limit).map_err(|error| match error {
        TextError::Empty => AppError::bad_input(limit.field, format!("{}不能为空", limit.label)),
        TextError::TooLong => {
            AppError::bad_input(limit.field, format!("{}不能超过{}个字符", limit.label, limit.max_chars))
        }
    })
}

/// Parses an optional text field: absent or blank means none; longer than the limit is refused.
pub fn optional_text(raw: Option<&str>, limit: TextLimit) -> AppResult<Option<Text>> {
    match raw {
        // Bounded as sent, blank or not (the documented maxLength).
        Some(raw) if raw.chars().count() > limit.max_chars => {
            Err(AppError::bad_input(limit.field, format!("{}不能超过{}个字符", limit.label, limit.max_chars)))
        }
        Some(raw) if !raw.trim().is_empty() => text(raw, limit).map(Some),
        _ => Ok(None),
    }
}

/// Parses an optional search keyword: like [`optional_text`], and refused if what remains after
/// trimming holds a NUL or another control character. No one types those into a search box, and
/// refusing them here means no store sees them (MongoDB's `$regex` fails on a NUL).
pub fn keyword(raw: Option<&str>) -> AppResult<Option<Text>> {
    let keyword = optional_text(raw, TextLimit::KEYWORD)?;
    if keyword.as_ref().is_some_and(|keyword| keyword.as_str().chars().any(char::is_control)) {
        let limit = TextLimit::KEYWORD;
        return Err(AppError::bad_input(limit.field, format!("{}不能包含控制字符", limit.label)));
    }
    Ok(keyword)
}

/// Parses paging parameters.
pub fn page(page: i64, page_size: i64) -> AppResult<PageRequest> {
    PageRequest::new(page, page_size).map_err(|error| match error {
        PageError::PageBelowOne => AppError::bad_input("page", "页码必须是大于等于1的整数"),
        PageError::SizeOutOfRange => AppError::bad_input("pageSize", format!("每页条数必须在1到{MAX_PAGE_SIZE}之间")),
    })
}
