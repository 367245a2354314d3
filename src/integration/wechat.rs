//! WeChat subscribe messages (spec 7.2, 微信小程序订阅消息) to the mini-program user, through the
//! WeChat API at `WECHAT_API_BASE` (or a gateway that speaks it):
//!
//! - `GET /cgi-bin/token?grant_type=client_credential&appid=&secret=` gives the access token,
//!   kept until five minutes before it expires, and fetched again when WeChat says it is invalid;
//! - `POST /cgi-bin/message/subscribe/send?access_token=` sends one message (the outbox entry's
//!   payload is its body: `touser`, `template_id`, `page`, `data`, `miniprogram_state`, `lang`);
//! - `GET /sns/jscode2session?appid=&secret=&js_code=&grant_type=authorization_code` turns the
//!   code of the mini-program's `wx.login` into the user's openid (`bindWechat`).
//!
//! WeChat answers HTTP 200 with an `errcode`: 0 is a delivery; an invalid or expired token is
//! fetched again and retried; a user who has not subscribed (43101), an openid or template that is
//! wrong (40003, 40037) or data that does not fit the template (47003) will not pass by retrying
//! and becomes a dead letter at once; anything else is retried.
//!
//! The app secret, the access token and the login code travel in the query string, as WeChat
//! wants them. No error text carries them: transport errors are described without the query
//! ([`describe`]), and every text that leaves this adapter (to the log, to `outbox.last_error`,
//! to the caller of `bindWechat`) has those values blanked once more ([`WechatClient::scrub`]).

use super::http_client::describe;
use super::{Delivery, Transport, WechatLogin};
use crate::config::WechatSettings;
use crate::domain::OutboxEntry;
use crate::error::{AppError, AppResult};
use async_trait::async_trait;
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// WeChat's codes for an access token that is invalid or expired.
const TOKEN_ERRORS: [i64; 3] = [40001, 40014, 42001];
/// WeChat's codes for a message that no retry will get through.
const PERMANENT_ERRORS: [i64; 4] = [40003, 40037, 43101, 47003];
/// How long before its stated expiry an access token is fetched again.
const TOKEN_MARGIN: Duration = Duration::from_secs(300);

pub struct WechatClient {
    client: reqwest::Client,
    settings: WechatSettings,
    token: Mutex<Option<(String, Instant)>>,
}

impl WechatClient {
    /// Talks to `settings.api_base` through `client` (see [`super::http_client::build`]).
    pub fn new(client: reqwest::Client, settings: WechatSettings) -> WechatClient {
        WechatClient { client, settings, token: Mutex::new(None) }
    }

    async fn get_json(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, String> {
        let url = format!("{}{path}", self.settings.api_base);
        let response = self.client.get(url).query(query).send().await.map_err(describe)?;
        if !response.status().is_success() {
            return Err(format!("WeChat answered HTTP {}", response.status().as_u16()));
        }
        response.json().await.map_err(|e| format!("WeChat's answer is not JSON: {}", describe(e)))
    }

    /// `text` with the app secret and `also` (an access token, a login code) blanked out: the
    /// last guard before a text leaves this adapter. Values shorter than 8 characters are left
    /// (WeChat's are 32 or more; blanking `code` would garble `errcode`).
    fn scrub(&self, text: String, also: &[&str]) -> String {
        let mut text = text;
        for secret in std::iter::once(self.settings.app_secret.as_str()).chain(also.iter().copied()) {
            if secret.len() >= 8 && text.contains(secret) {
                text = text.replace(secret, "<redacted>");
            }
        }
        text
    }

    /// The access token, fetched when there is none yet, it is about to expire, or `stale` is
    /// the one WeChat just refused.
    async fn access_token(&self, stale: Option<&str>) -> Result<String, String> {
        let mut cached = self.token.lock().await;
        if let Some((token, until)) = cached.as_ref() {
            if Some(token.as_str()) != stale && Instant::now() < *until {
                return Ok(token.clone());
            }
        }
        let query = [
            ("grant_type", "client_credential"),
            ("appid", &self.settings.app_id),
            ("secret", &self.settings.app_secret),
        ];
        let answer = self.get_json("/cgi-bin/token", &query).await?;
        let token = answer["access_token"]
            .as_str()
            .ok_or_else(|| format!("no access token from WeChat: errcode {} {}", answer["errcode"], answer["errmsg"]))?
            .to_owned();
        let lifetime = Duration::from_secs(answer["expires_in"].as_u64().unwrap_or(7200));
        *cached = Some((token.clone(), Instant::now() + lifetime.saturating_sub(TOKEN_MARGIN)));
        Ok(token)
    }

    async fn send(&self, token: &str, message: &Value) -> Result<(i64, String), String> {
        let url = format!("{}/cgi-bin/message/subscribe/send", self.settings.api_base);
        let response =
            self.client.post(url).query(&[("access_token", token)]).json(message).send().await.map_err(describe)?;
        if !response.status().is_success() {
            return Err(format!("WeChat answered HTTP {}", response.status().as_u16()));
        }
        let answer: Value =
            response.json().await.map_err(|e| format!("WeChat's answer is not JSON: {}", describe(e)))?;
        Ok((answer["errcode"].as_i64().unwrap_or(0), answer["errmsg"].as_str().unwrap_or_default().to_owned()))
    }
}

#[async_trait]
impl Transport for WechatClient {
    async fn deliver(&self, entry: &OutboxEntry) -> Delivery {
        let mut stale: Option<String> = None;
        for _ in 0..2 {
            let token = match self.access_token(stale.as_deref()).await {
                Ok(token) => token,
                Err(error) => return Delivery::Retry(self.scrub(error, &[])),
            };
            match self.send(&token, &entry.draft.payload).await {
                Ok((0, _)) => return Delivery::Delivered,
                Ok((code, _)) if TOKEN_ERRORS.contains(&code) => stale = Some(token),
                Ok((code, message)) if PERMANENT_ERRORS.contains(&code) => {
                    let text = format!("WeChat refused the message: errcode {code} {message}");
                    return Delivery::Refused(self.scrub(text, &[&token]));
                }
                Ok((code, message)) => {
                    return Delivery::Retry(self.scrub(format!("WeChat errcode {code} {message}"), &[&token]))
                }
                Err(error) => return Delivery::Retry(self.scrub(error, &[&token])),
            }
        }
        Delivery::Retry("WeChat refused a freshly fetched access token".to_owned())
    }
}

#[async_trait]
impl WechatLogin for WechatClient {
    async fn openid_for_code(&self, code: &str) -> AppResult<String> {
        let query = [
            ("appid", self.settings.app_id.as_str()),
            ("secret", self.settings.app_secret.as_str()),
            ("js_code", code),
            ("grant_type", "authorization_code"),
        ];
        let answer = self
            .get_json("/sns/jscode2session", &query)
            .await
            .map_err(|error| AppError::Unavailable(self.scrub(error, &[code])))?;
        match answer["openid"].as_str() {
            Some(openid) if !openid.is_empty() && openid.len() <= 128 => Ok(openid.to_owned()),
            _ => Err(AppError::bad_input("code", format!("微信登录凭证无效（errcode {}）", answer["errcode"]))),
        }
    }
}
