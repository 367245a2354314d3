//! The ports the service layer needs from the world outside the store: WeChat's login, and the bus
//! that carries events (and typing signals) between server processes. The adapters live above the service layer
//! (`crate::integration::wechat`, `crate::redis::bus`); the services see only these traits.

use super::typing::TypingSignal;
use crate::domain::EventRecord;
use crate::error::AppResult;
use async_trait::async_trait;

/// The port that turns a mini-program login code (`wx.login`) into the user's openid.
#[async_trait]
pub trait WechatLogin: Send + Sync {
    async fn openid_for_code(&self, code: &str) -> AppResult<String>;
}

/// Carries event records between processes that share a store.
#[async_trait]
pub trait RemoteBus: Send + Sync {
    async fn publish(&self, record: &EventRecord) -> AppResult<()>;
    /// Carries a customer's typing signal, apart from the event records: it is in no log.
    async fn publish_typing(&self, signal: &TypingSignal) -> AppResult<()>;
}
