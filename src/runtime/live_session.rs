//! `LiveSession`: one Durable Object per open live-view WebSocket.
//!
//! Why an object per socket, and not the user's directory: the token arrives in the
//! socket's first message, so when the upgrade request comes in nobody knows whose it
//! is. The worker hands the upgrade to a fresh session object; the session reads the
//! token, checks it in KV and subscribes to that user's directory, which from then on
//! pushes it every change. The socket is accepted with the hibernation API: between
//! messages the object is evicted from memory and an idle viewer costs nothing; what
//! it needs to remember (its provider, and once known its user and token key, never
//! the token) travels in the socket's attachment.
//!
//! A socket is closed with 4401 on a bad token, 4400 on a first message that is not
//! `{"token"}`, 4408 when no token came within 10 s, and 4401 when its token is
//! revoked (at once through the operator API, or at the next check, every 10 min).

use wasm_bindgen::prelude::*;
use worker::worker_sys::ext::WebSocketExt;
use worker::{
    durable_object, DurableObject, Env, Request, Response, State, WebSocket,
    WebSocketIncomingMessage, WebSocketPair,
};

use crate::errors::ApiError;
use crate::live::{
    available_message, read_hello, CLOSE_BAD_HELLO, CLOSE_BAD_TOKEN, CLOSE_HELLO_TIMEOUT,
    CLOSE_THROTTLED, HELLO_TIMEOUT_MS, RECHECK_INTERVAL_MS,
};
use crate::protocol::{Answer, DirectoryCall, DirectoryOp};
use crate::providers::Provider;
use crate::tokens::kv_key;

use super::{auth, directory, now_ms};

#[durable_object]
pub struct LiveSession {
    state: State,
    env: Env,
}

/// What a socket remembers across hibernation (its attachment, in the wire format).
#[derive(Default)]
struct Attachment {
    provider: String,
    /// The client's address, for throttling bad tokens.
    client: Option<String>,
    user: Option<String>,
    /// The token's KV key (`token:<sha256>`), never the token.
    key: Option<String>,
}

crate::wire_struct!(Attachment {
    provider,
    client,
    user,
    key
});

impl Attachment {
    fn save(&self, ws: &WebSocket) -> worker::Result<()> {
        ws.as_ref()
            .serialize_attachment(JsValue::from_str(&crate::wire::encode(self)))
            .map_err(worker::Error::from)
    }

    /// The socket's attachment; the default when it has none (or an unreadable one).
    fn load(ws: &WebSocket) -> Attachment {
        ws.as_ref()
            .deserialize_attachment()
            .ok()
            .and_then(|v| v.as_string())
            .and_then(|text| crate::wire::decode(&text).ok())
            .unwrap_or_default()
    }
}

impl DurableObject for LiveSession {
    fn new(state: State, env: Env) -> Self {
        LiveSession { state, env }
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        let Some((provider, _)) = Provider::by_public_path(&req.path()) else {
            return Response::error("not a live view path", 404);
        };
        let pair = WebSocketPair::new()?;
        self.state.accept_web_socket(&pair.server);
        let attachment = Attachment {
            provider: provider.name().to_owned(),
            client: req.headers().get("cf-connecting-ip").ok().flatten(),
            ..Attachment::default()
        };
        attachment.save(&pair.server)?;
        self.set_alarm_in(HELLO_TIMEOUT_MS).await;
        Response::from_websocket(pair.client)
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> worker::Result<()> {
        let mut attachment = Attachment::load(&ws);
        if attachment.user.is_some() {
            // Viewers only listen; anything they send after the token is ignored.
            return Ok(());
        }
        let text = match message {
            WebSocketIncomingMessage::String(text) => text,
            WebSocketIncomingMessage::Binary(_) => String::new(),
        };
        let token = match read_hello(&text) {
            Ok(token) => token,
            Err(reason) => return close(&ws, CLOSE_BAD_HELLO, reason),
        };
        let key = kv_key(&token);
        let user = match auth::user_of_key(&self.env, &key).await {
            Ok(user) => user,
            Err(ApiError::Unauthorized) => {
                let refusal = auth::throttle_failure(&self.env, attachment.client.clone()).await;
                let code = if refusal.status() == 429 {
                    CLOSE_THROTTLED
                } else {
                    CLOSE_BAD_TOKEN
                };
                return close(&ws, code, refusal.message());
            }
            Err(e) => {
                worker::console_error!("live session: token check failed: {}", e.message());
                return close(&ws, 1011, "token check failed, reconnect");
            }
        };
        let Some(provider) = Provider::parse(&attachment.provider) else {
            return close(&ws, 1011, "unknown provider");
        };
        let session = self.state.id().to_string();
        let answer = self
            .ask_directory(
                provider,
                user.as_str(),
                DirectoryOp::Subscribe {
                    session,
                    digest: key.clone(),
                },
            )
            .await;
        let body = match answer {
            Some(answer) if answer.status == 200 => answer.body,
            _ => return close(&ws, 1011, "the scheduler did not answer, reconnect"),
        };
        attachment.user = Some(user.as_str().to_owned());
        attachment.key = Some(key);
        attachment.save(&ws)?;
        ws.send_with_str(available_message(&body))?;
        self.set_alarm_in(RECHECK_INTERVAL_MS).await;
        Ok(())
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        _code: usize,
        _reason: String,
        _was_clean: bool,
    ) -> worker::Result<()> {
        self.unsubscribe(&ws).await;
        Ok(())
    }

    async fn websocket_error(&self, ws: WebSocket, _error: worker::Error) -> worker::Result<()> {
        self.unsubscribe(&ws).await;
        Ok(())
    }

    /// Closes sockets that never sent a token, and checks the token of the others.
    async fn alarm(&self) -> worker::Result<Response> {
        let mut open = false;
        for ws in self.state.get_websockets() {
            let attachment = Attachment::load(&ws);
            match attachment.key {
                None => {
                    let _ = close(&ws, CLOSE_HELLO_TIMEOUT, "no token within 10 s");
                }
                Some(key) => match auth::lookup(&self.env, &key).await {
                    Ok(None) => {
                        let _ = close(&ws, CLOSE_BAD_TOKEN, "token revoked");
                        self.unsubscribe(&ws).await;
                    }
                    _ => open = true,
                },
            }
        }
        if open {
            self.set_alarm_in(RECHECK_INTERVAL_MS).await;
        }
        Response::ok("")
    }
}

#[wasm_bindgen]
impl LiveSession {
    /// RPC from the directory: sends a message to the socket. `false` when there is
    /// none left (the directory then forgets this session).
    pub fn push(&self, message: String) -> bool {
        let sockets = self.state.get_websockets();
        let mut sent = false;
        for ws in &sockets {
            sent |= ws.send_with_str(&message).is_ok();
        }
        sent
    }

    /// RPC from the directory: the token was revoked.
    pub fn revoke(&self, _unused: String) -> bool {
        for ws in self.state.get_websockets() {
            let _ = close(&ws, CLOSE_BAD_TOKEN, "token revoked");
        }
        true
    }
}

impl LiveSession {
    async fn set_alarm_in(&self, ms: i64) {
        let at = now_ms() + ms;
        let when = js_sys::Date::new(&JsValue::from_f64(at as f64));
        let _ = self
            .state
            .storage()
            .set_alarm(worker::ScheduledTime::new(when))
            .await;
    }

    async fn ask_directory(
        &self,
        provider: Provider,
        user: &str,
        op: DirectoryOp,
    ) -> Option<Answer> {
        let call = DirectoryCall {
            provider,
            user: user.to_owned(),
            op,
        };
        let answer = directory::call(&self.env, &call).await.ok()?;
        Answer::decode(&String::from(answer))
    }

    async fn unsubscribe(&self, ws: &WebSocket) {
        let attachment = Attachment::load(ws);
        let (Some(user), Some(provider)) = (attachment.user, Provider::parse(&attachment.provider))
        else {
            return;
        };
        let session = self.state.id().to_string();
        let _ = self
            .ask_directory(provider, &user, DirectoryOp::Unsubscribe { session })
            .await;
    }
}

fn close(ws: &WebSocket, code: u16, reason: &str) -> worker::Result<()> {
    ws.close(Some(code), Some(reason))
}
