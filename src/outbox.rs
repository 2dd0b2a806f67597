//! The webhook outbox an account object keeps: how much of it is kept, and how the
//! operator pages through it.
//!
//! Every delivery is a row with a sequence number that only grows (`AUTOINCREMENT`).
//! A page of the user's webhooks walks the user's accounts in name order and, within
//! one account, the rows of the asked status in sequence order, through an index on
//! `(status, seq)`: a page costs the same whether the table holds a hundred rows or a
//! hundred thousand. The cursor is where the previous page stopped: an account name and
//! a sequence number, encoded so clients treat it as opaque.

use crate::base64::{decode_url_safe, encode_url_safe};

use crate::webhook::DeliveryStatus;

/// Failed deliveries kept per account (beyond that the oldest go first).
pub const MAX_FAILED_ROWS: i64 = 10_000;
/// Delivered deliveries kept per account, without their payloads.
pub const MAX_DELIVERED_ROWS: i64 = 10_000;
/// Pending deliveries an account may hold. Past this, a new webhook pushes the oldest
/// pending one to `failed` (it can be replayed once the receiver is back).
pub const MAX_PENDING_ROWS: i64 = 10_000;
/// Rows pruned per alarm run at most: pruning is spread over runs so one alarm never
/// does unbounded work.
pub const PRUNE_BATCH: i64 = 2_000;

/// `limit` when the query has none, and its bounds.
pub const DEFAULT_PAGE_ROWS: usize = 100;
pub const MAX_PAGE_ROWS: usize = 1000;
/// A page stops early, with a cursor, once its body passes this size: a thousand rows
/// with 256 KiB results each would otherwise be a quarter of a gigabyte.
pub const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;

/// Where a page of the webhooks list starts: after row `seq` of `account`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub account: String,
    pub seq: i64,
}

crate::wire_struct!(Cursor { account, seq });

impl Cursor {
    pub fn encode(&self) -> String {
        encode_url_safe(format!("{}\n{}", self.seq, self.account).as_bytes())
    }

    pub fn decode(text: &str) -> Result<Cursor, String> {
        let bad = || "cursor is not one this API gave out".to_owned();
        let bytes = decode_url_safe(text).ok_or_else(bad)?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let (seq, account) = text.split_once('\n').ok_or_else(bad)?;
        let seq = seq.parse::<i64>().map_err(|_| bad())?;
        if account.is_empty() || seq < 0 {
            return Err(bad());
        }
        Ok(Cursor {
            account: account.to_owned(),
            seq,
        })
    }
}

/// The query of a webhooks list: `status` (default `failed`), `limit`, `cursor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageQuery {
    pub status: DeliveryStatus,
    pub limit: usize,
    pub cursor: Option<Cursor>,
}

crate::wire_struct!(PageQuery {
    status,
    limit,
    cursor
});

impl PageQuery {
    pub fn parse(
        status: Option<&str>,
        limit: Option<&str>,
        cursor: Option<&str>,
    ) -> Result<PageQuery, String> {
        let status = match status {
            None => DeliveryStatus::Failed,
            Some(text) => {
                DeliveryStatus::parse(text).ok_or("status must be failed, pending or delivered")?
            }
        };
        let limit = match limit {
            None => DEFAULT_PAGE_ROWS,
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_PAGE_ROWS).contains(n))
                .ok_or("limit must be a whole number from 1 to 1000")?,
        };
        let cursor = cursor.map(Cursor::decode).transpose()?;
        Ok(PageQuery {
            status,
            limit,
            cursor,
        })
    }
}

/// When the oldest kept row of a finished kind may go: `retention_ms` after it
/// finished.
pub fn prune_before(now_ms: i64, retention_ms: i64) -> i64 {
    now_ms.saturating_sub(retention_ms)
}

/// The `Link` header of a page that is not the last.
pub fn next_link(path: &str, query: &PageQuery, next: &Cursor) -> String {
    format!(
        "<{path}?status={}&limit={}&cursor={}>; rel=\"next\"",
        query.status.as_str(),
        query.limit,
        next.encode()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_anything_else() {
        let c = Cursor {
            account: "US:a@x.com".to_owned(),
            seq: 10_042,
        };
        let text = c.encode();
        assert!(text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(Cursor::decode(&text).unwrap(), c);
        for bad in [
            "",
            "!!",
            "bm9wZQ",
            &encode_url_safe(b"x\na"),
            &encode_url_safe(b"5\n"),
        ] {
            assert!(Cursor::decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn page_queries_have_defaults_and_bounds() {
        let q = PageQuery::parse(None, None, None).unwrap();
        assert_eq!(
            (q.status, q.limit, q.cursor),
            (DeliveryStatus::Failed, 100, None)
        );
        let q = PageQuery::parse(Some("delivered"), Some("1000"), None).unwrap();
        assert_eq!((q.status, q.limit), (DeliveryStatus::Delivered, 1000));
        for (s, l) in [
            (Some("lost"), None),
            (None, Some("0")),
            (None, Some("1001")),
            (None, Some("x")),
        ] {
            assert!(PageQuery::parse(s, l, None).is_err());
        }
        assert!(PageQuery::parse(None, None, Some("garbage!")).is_err());
    }

    #[test]
    fn the_next_link_carries_the_query_and_the_cursor() {
        let q = PageQuery::parse(Some("pending"), Some("2"), None).unwrap();
        let c = Cursor {
            account: "a@x.com".into(),
            seq: 7,
        };
        assert_eq!(
            next_link("/admin/v1/users/u/kling/webhooks", &q, &c),
            format!(
                "</admin/v1/users/u/kling/webhooks?status=pending&limit=2&cursor={}>; rel=\"next\"",
                c.encode()
            )
        );
    }

    #[test]
    fn retention_counts_back_from_now() {
        assert_eq!(prune_before(100_000, 30_000), 70_000);
        assert_eq!(prune_before(0, i64::MAX), -i64::MAX);
    }
}
