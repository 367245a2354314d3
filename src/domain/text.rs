//! User-written text, trimmed and bounded.
//!
//! The bound counts the characters as sent, before trimming: what a client can check before it
//! sends (the OpenAPI document's `maxLength`), and no request body is padded past it with spaces.

/// The bounds for one kind of text field.
#[derive(Debug, Clone, Copy)]
pub struct TextLimit {
    /// The field's name as the client knows it, for error messages.
    pub field: &'static str,
    /// Its Chinese label, for error messages.
    pub label: &'static str,
    /// The most characters (not bytes) it may hold, as sent.
    pub max_chars: usize,
}

impl TextLimit {
    pub const TICKET_TITLE: TextLimit = TextLimit { field: "title", label: "工单标题", max_chars: 100 };
    pub const TICKET_CONTENT: TextLimit = TextLimit { field: "content", label: "工单内容", max_chars: 5000 };
    pub const REPLY_CONTENT: TextLimit = TextLimit { field: "content", label: "回复内容", max_chars: 5000 };
    pub const RESOLUTION: TextLimit = TextLimit { field: "resolution", label: "解决说明", max_chars: 2000 };
    pub const REASON: TextLimit = TextLimit { field: "reason", label: "升级原因", max_chars: 1000 };
    pub const CHAT_CONTENT: TextLimit = TextLimit { field: "content", label: "消息内容", max_chars: 2000 };
    pub const KEYWORD: TextLimit = TextLimit { field: "keyword", label: "搜索关键词", max_chars: 50 };
    pub const USERNAME: TextLimit = TextLimit { field: "username", label: "账号", max_chars: 64 };
    pub const CANNED_SHORT_CODE: TextLimit =
        TextLimit { field: "shortCode", label: "快捷短语编码", max_chars: 32 };
    pub const CANNED_TITLE: TextLimit = TextLimit { field: "title", label: "快捷短语标题", max_chars: 100 };
    pub const CANNED_CONTENT: TextLimit = TextLimit { field: "content", label: "快捷短语内容", max_chars: 2000 };
}

/// Why a text was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextError {
    Empty,
    TooLong,
}

/// A non-empty, trimmed string within its field's limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(String);

impl Text {
    pub fn parse(raw: &str, limit: TextLimit) -> Result<Text, TextError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(TextError::Empty);
        }
        if raw.chars().count() > limit.max_chars {
            return Err(TextError::TooLong);
        }
        Ok(Text(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_and_counted_in_characters_not_bytes_as_sent() {
        let limit = TextLimit { field: "t", label: "标题", max_chars: 4 };
        assert_eq!(Text::parse(" 工单 ", limit).unwrap().as_str(), "工单");
        assert_eq!(Text::parse("  工单标题  ", limit), Err(TextError::TooLong));
        assert_eq!(Text::parse("工单标题啊", limit), Err(TextError::TooLong));
        assert_eq!(Text::parse(" \n\t", limit), Err(TextError::Empty));
    }
}
