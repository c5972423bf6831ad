//! The event log and log sessions. Cursors come from the one-row `event_cursor`
//! table under its row lock, so events commit in cursor order whichever replica
//! writes them: a reader that has seen cursor `c` never later finds a smaller one.

use async_trait::async_trait;

use super::{RowsAffected, SqlTables};
use crate::model::{Event, EventBounds, LogRequest, LogSession, NewEvent};
use crate::store::stream::StreamStore;
use crate::{Error, Result};

const TAKE_CURSORS_SQL: &str =
    "UPDATE event_cursor SET latest = latest + $1 WHERE id = 1 RETURNING latest";
const INSERT_EVENT_SQL: &str = "INSERT INTO events (id, at, kind, topic, body, dedupe_key) \
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (dedupe_key) DO NOTHING";
const EVENTS_AFTER_SQL: &str = "SELECT id, body FROM events WHERE id > $1 ORDER BY id LIMIT $2";
const BOUNDS_SQL: &str = "SELECT latest, pruned_through FROM event_cursor WHERE id = 1";
/// The cursor below which events go: the newest `keep` and those at or after the
/// time stay.
const PRUNE_POINT_SQL: &str = "SELECT COALESCE(MAX(id), 0) FROM events \
     WHERE id <= (SELECT latest FROM event_cursor WHERE id = 1) - $1 OR at < $2";
const PRUNE_EVENTS_SQL: &str = "DELETE FROM events WHERE id <= $1";
const PRUNED_THROUGH_SQL: &str = "UPDATE event_cursor SET pruned_through = $1 \
     WHERE id = 1 AND pruned_through < $1";

const SESSION_SQL: &str = "SELECT id, node_id, deployment_id, request, opened_at, \
     viewer_seen_at, end_reason FROM log_sessions WHERE id = $1";
const OPEN_SESSIONS_SQL: &str = "SELECT id, node_id, deployment_id, request, opened_at, \
     viewer_seen_at, end_reason FROM log_sessions WHERE node_id = $1 AND ended_at IS NULL \
     AND viewer_seen_at > $2 ORDER BY opened_at, id";
const PRUNE_LINES_SQL: &str = "DELETE FROM log_lines WHERE session_id IN \
     (SELECT id FROM log_sessions WHERE ended_at < $1 OR viewer_seen_at < $1)";
const PRUNE_SESSIONS_SQL: &str =
    "DELETE FROM log_sessions WHERE ended_at < $1 OR viewer_seen_at < $1";

/// A `log_sessions` row.
type SessionRow = (String, String, String, String, f64, f64, Option<String>);

fn session_of(row: SessionRow) -> Result<LogSession> {
    let (id, node_id, deployment_id, request, opened_at, viewer_seen_at, end_reason) = row;
    let mut request: LogRequest = serde_json::from_str(&request)
        .map_err(|err| Error::Corrupt(format!("log session {id}: {err}")))?;
    request.session_id = id;
    request.deployment_id = deployment_id;
    Ok(LogSession {
        request,
        node_id,
        opened_at,
        viewer_seen_at,
        end_reason,
    })
}

fn event_of((id, body): (i64, String)) -> Result<Event> {
    let mut event: Event =
        serde_json::from_str(&body).map_err(|err| Error::Corrupt(format!("event {id}: {err}")))?;
    event.cursor = u64::try_from(id).unwrap_or_default();
    Ok(event)
}

fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[async_trait]
impl<DB> StreamStore for SqlTables<DB>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'c> &'c sqlx::Pool<DB>: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> f64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    (i64,): for<'r> sqlx::FromRow<'r, DB::Row>,
    (i64, i64): for<'r> sqlx::FromRow<'r, DB::Row>,
    (i64, String): for<'r> sqlx::FromRow<'r, DB::Row>,
    SessionRow: for<'r> sqlx::FromRow<'r, DB::Row>,
    DB::QueryResult: RowsAffected,
{
    async fn append_events(&self, events: &[NewEvent]) -> Result<Vec<Event>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.writer.begin_with(self.begin).await?;
        let count = signed(events.len() as u64);
        let (latest,): (i64,) = sqlx::query_as(TAKE_CURSORS_SQL)
            .bind(count)
            .fetch_one(&mut *tx)
            .await?;
        let first = latest - count + 1;
        let mut stored = Vec::with_capacity(events.len());
        for (cursor, new) in (first..).zip(events) {
            let body = serde_json::to_string(&new.event)
                .map_err(|err| Error::Corrupt(format!("event: {err}")))?;
            let written = sqlx::query(INSERT_EVENT_SQL)
                .bind(cursor)
                .bind(new.event.time)
                .bind(new.event.kind.as_str())
                .bind(new.event.topic.as_str())
                .bind(body.as_str())
                .bind(new.dedupe_key.as_deref())
                .execute(&mut *tx)
                .await?;
            if written.affected() > 0 {
                let mut event = new.event.clone();
                event.cursor = u64::try_from(cursor).unwrap_or_default();
                stored.push(event);
            }
        }
        tx.commit().await?;
        Ok(stored)
    }

    async fn events_after(&self, after: u64, limit: usize) -> Result<Vec<Event>> {
        let rows: Vec<(i64, String)> = sqlx::query_as(EVENTS_AFTER_SQL)
            .bind(signed(after))
            .bind(signed(limit as u64))
            .fetch_all(&self.reader)
            .await?;
        rows.into_iter().map(event_of).collect()
    }

    async fn event_bounds(&self) -> Result<EventBounds> {
        let (latest, pruned): (i64, i64) =
            sqlx::query_as(BOUNDS_SQL).fetch_one(&self.reader).await?;
        let unsigned = |n: i64| u64::try_from(n).unwrap_or_default();
        Ok(EventBounds {
            latest: unsigned(latest),
            pruned_through: unsigned(pruned),
        })
    }

    async fn prune_events(&self, keep: u64, before: f64) -> Result<u64> {
        let mut tx = self.writer.begin_with(self.begin).await?;
        let (point,): (i64,) = sqlx::query_as(PRUNE_POINT_SQL)
            .bind(signed(keep))
            .bind(before)
            .fetch_one(&mut *tx)
            .await?;
        if point == 0 {
            return Ok(0);
        }
        let removed = sqlx::query(PRUNE_EVENTS_SQL)
            .bind(point)
            .execute(&mut *tx)
            .await?
            .affected();
        sqlx::query(PRUNED_THROUGH_SQL)
            .bind(point)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(removed)
    }

    async fn open_log_session(&self, session: &LogSession) -> Result<()> {
        let request = serde_json::to_string(&session.request)
            .map_err(|err| Error::Corrupt(format!("log session: {err}")))?;
        sqlx::query(
            "INSERT INTO log_sessions (id, node_id, deployment_id, request, opened_at, \
             viewer_seen_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(session.request.session_id.as_str())
        .bind(session.node_id.as_str())
        .bind(session.request.deployment_id.as_str())
        .bind(request.as_str())
        .bind(session.opened_at)
        .bind(session.viewer_seen_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn log_session(&self, id: &str) -> Result<Option<LogSession>> {
        let row: Option<SessionRow> = sqlx::query_as(SESSION_SQL)
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.map(session_of).transpose()
    }

    async fn open_log_sessions(&self, node_id: &str, seen_after: f64) -> Result<Vec<LogSession>> {
        let rows: Vec<SessionRow> = sqlx::query_as(OPEN_SESSIONS_SQL)
            .bind(node_id)
            .bind(seen_after)
            .fetch_all(&self.reader)
            .await?;
        rows.into_iter().map(session_of).collect()
    }

    async fn touch_log_session(&self, id: &str, now: f64) -> Result<bool> {
        let touched = sqlx::query(
            "UPDATE log_sessions SET viewer_seen_at = $2 WHERE id = $1 AND ended_at IS NULL",
        )
        .bind(id)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(touched.affected() > 0)
    }

    async fn end_log_session(&self, id: &str, now: f64, reason: &str) -> Result<bool> {
        let ended = sqlx::query(
            "UPDATE log_sessions SET ended_at = $2, end_reason = $3 \
             WHERE id = $1 AND ended_at IS NULL",
        )
        .bind(id)
        .bind(now)
        .bind(reason)
        .execute(&self.writer)
        .await?;
        Ok(ended.affected() > 0)
    }

    async fn append_log_lines(&self, id: &str, batch: &str) -> Result<bool> {
        // one statement: the session must be open, and the batch takes the next number
        let written = sqlx::query(
            "INSERT INTO log_lines (session_id, seq, body) \
             SELECT s.id, COALESCE((SELECT MAX(l.seq) FROM log_lines l \
             WHERE l.session_id = s.id), 0) + 1, $2 \
             FROM log_sessions s WHERE s.id = $1 AND s.ended_at IS NULL",
        )
        .bind(id)
        .bind(batch)
        .execute(&self.writer)
        .await?;
        Ok(written.affected() > 0)
    }

    async fn log_batches_after(&self, id: &str, after: u64) -> Result<Vec<(u64, String)>> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT seq, body FROM log_lines WHERE session_id = $1 AND seq > $2 ORDER BY seq",
        )
        .bind(id)
        .bind(signed(after))
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(seq, body)| (u64::try_from(seq).unwrap_or_default(), body))
            .collect())
    }

    async fn prune_log_sessions(&self, before: f64) -> Result<u64> {
        let mut tx = self.writer.begin_with(self.begin).await?;
        sqlx::query(PRUNE_LINES_SQL)
            .bind(before)
            .execute(&mut *tx)
            .await?;
        let removed = sqlx::query(PRUNE_SESSIONS_SQL)
            .bind(before)
            .execute(&mut *tx)
            .await?
            .affected();
        tx.commit().await?;
        Ok(removed)
    }
}
