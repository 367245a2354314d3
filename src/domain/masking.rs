//! Data masking (spec 6.2): contact details shown in lists are masked; only a customer's own
//! detail view shows them in full. This is the one place the rule lives; the service layer decides
//! where it applies (`service::customers`).
//!
//! - A phone number keeps its first 3 and last 4 digits: `13812345678` → `138****5678`. Shorter
//!   numbers keep less (at least half is hidden); whatever is not a digit (`+`, `-`, spaces) stays.
//! - An email keeps the first character of the local part and the whole domain:
//!   `service@example.com` → `s***@example.com`. Text without `@` is masked like a name.

/// Masks a phone number.
pub fn mask_phone(phone: &str) -> String {
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    let (keep_start, keep_end) = match digits {
        0..=3 => (0, 0),
        4..=6 => (1, 1),
        7..=9 => (2, 2),
        _ => (3, 4),
    };
    let mut seen = 0;
    phone
        .chars()
        .map(|c| {
            if !c.is_ascii_digit() {
                return c;
            }
            seen += 1;
            if seen <= keep_start || seen > digits - keep_end {
                c
            } else {
                '*'
            }
        })
        .collect()
}

/// Masks an email address.
pub fn mask_email(email: &str) -> String {
    match email.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => {
            let first: String = email.chars().take(1).collect();
            if email.is_empty() {
                String::new()
            } else {
                format!("{first}***")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_keep_the_first_three_and_last_four_digits() {
        assert_eq!(mask_phone("13812345678"), "138****5678");
        assert_eq!(mask_phone("+86 138-1234-5678"), "+86 1**-****-5678");
        assert_eq!(mask_phone("010-12345678"), "010-****5678");
        assert_eq!(mask_phone("12345"), "1***5");
        assert_eq!(mask_phone("12"), "**");
        assert_eq!(mask_phone(""), "");
    }

    #[test]
    fn emails_keep_the_first_character_and_the_domain() {
        assert_eq!(mask_email("service@example.com"), "s***@example.com");
        assert_eq!(mask_email("li.si@公司.cn"), "l***@公司.cn");
        assert_eq!(mask_email("@example.com"), "***@example.com");
        assert_eq!(mask_email("not-an-email"), "n***");
        assert_eq!(mask_email(""), "");
    }
}
