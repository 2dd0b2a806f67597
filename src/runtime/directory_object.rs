//! `UserDirectory`: one Durable Object per (provider, user) that knows which accounts
//! the user has configured.
//!
//! Why an object and not a KV list: KV is eventually consistent, so an account added
//! a moment ago could be missing from the next registration's automatic choice, or a
//! removed one could still be asked. The directory is read on every list, in one
//! round trip, before the account objects are asked in parallel.

use worker::{durable_object, DurableObject, Env, Request, Response, SqlStorageValue, State};

use crate::protocol::DirectoryRequest;

#[durable_object(fetch)]
pub struct UserDirectory {
    state: State,
}

impl DurableObject for UserDirectory {
    fn new(state: State, _env: Env) -> Self {
        let directory = UserDirectory { state };
        if let Err(e) = directory.sql().exec(
            "CREATE TABLE IF NOT EXISTS accounts (name TEXT PRIMARY KEY)",
            None,
        ) {
            worker::console_error!("directory schema: {e}");
        }
        directory
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let text = req.text().await?;
        let request: DirectoryRequest = match serde_json::from_str(&text) {
            Ok(request) => request,
            Err(e) => return Response::error(format!("bad directory request: {e}"), 400),
        };
        let reply = match request {
            DirectoryRequest::List => serde_json::to_string(&self.list()?),
            DirectoryRequest::Add { account } => serde_json::to_string(&self.add(account)?),
            DirectoryRequest::Remove { account } => serde_json::to_string(&self.remove(account)?),
        };
        Response::ok(reply.map_err(|e| worker::Error::RustError(e.to_string()))?)
    }
}

#[derive(serde::Deserialize)]
struct NameRow {
    name: String,
}

impl UserDirectory {
    fn sql(&self) -> worker::SqlStorage {
        self.state.storage().sql()
    }

    fn list(&self) -> worker::Result<Vec<String>> {
        let rows: Vec<NameRow> = self
            .sql()
            .exec("SELECT name FROM accounts ORDER BY name", None)?
            .to_array()?;
        Ok(rows.into_iter().map(|r| r.name).collect())
    }

    fn contains(&self, account: &str) -> worker::Result<bool> {
        let rows: Vec<NameRow> = self
            .sql()
            .exec(
                "SELECT name FROM accounts WHERE name = ?",
                vec![SqlStorageValue::from(account)],
            )?
            .to_array()?;
        Ok(!rows.is_empty())
    }

    fn add(&self, account: String) -> worker::Result<bool> {
        let existed = self.contains(&account)?;
        self.sql().exec(
            "INSERT OR IGNORE INTO accounts (name) VALUES (?)",
            vec![SqlStorageValue::from(account)],
        )?;
        Ok(!existed)
    }

    fn remove(&self, account: String) -> worker::Result<bool> {
        let existed = self.contains(&account)?;
        self.sql().exec(
            "DELETE FROM accounts WHERE name = ?",
            vec![SqlStorageValue::from(account)],
        )?;
        Ok(existed)
    }
}
