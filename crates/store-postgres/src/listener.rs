//! Wake-ups from other nodes: a background task `LISTEN`s on the deliveries channel
//! and notifies the local waker whenever a message with due deliveries commits on any
//! node using the same schema (the payload names the schema, so stores sharing one
//! database in different schemas do not wake each other). It also `LISTEN`s on the
//! messages channel and moves the commit counter live readers (SSE) wait on.
//!
//! Notifications are a hint, not a queue: a node that was disconnected may have missed
//! some, so the task also wakes the dispatcher after every reconnect, and dispatchers
//! keep their periodic sweep.

use std::{sync::Arc, time::Duration};

use sqlx::{PgPool, postgres::PgListener};
use tokio::{
    sync::{Notify, watch},
    task::JoinHandle,
};

use crate::writer::{CHANNEL, MESSAGES_CHANNEL};

/// How long to wait before connecting again after the listener failed.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Spawns the listener on its own pool (one connection, kept out of the main pool).
pub(crate) fn spawn_listener(
    pool: PgPool,
    schema: String,
    waker: Arc<Notify>,
    commits: Arc<watch::Sender<u64>>,
) -> JoinHandle<()> {
    tokio::spawn(listen_until_stopped(pool, schema, waker, commits))
}

async fn listen_until_stopped(pool: PgPool, schema: String, waker: Arc<Notify>, commits: Arc<watch::Sender<u64>>) {
    loop {
        match listen(&pool, &schema, &waker, &commits).await {
            Ok(()) => return,
            Err(e) => tracing::warn!(error = %e, "lost the PostgreSQL notification listener; reconnecting"),
        }
        tokio::time::sleep(RETRY_AFTER).await;
    }
}

/// Listens until the connection fails for good (`Err`) or the pool is closed (`Ok`).
async fn listen(pool: &PgPool, schema: &str, waker: &Notify, commits: &watch::Sender<u64>) -> Result<(), sqlx::Error> {
    let bump = || commits.send_modify(|n| *n = n.wrapping_add(1));
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen_all([CHANNEL, MESSAGES_CHANNEL]).await?;
    // Anything committed while we were not listening is found by one claim pass, and
    // by live readers reading again.
    waker.notify_one();
    bump();
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) if notification.payload() == schema => {
                if notification.channel() == MESSAGES_CHANNEL {
                    bump();
                } else {
                    waker.notify_one();
                }
            }
            Ok(Some(_)) => {}
            // The connection dropped and was re-established (with its LISTEN) already.
            Ok(None) => {
                waker.notify_one();
                bump();
            }
            Err(sqlx::Error::PoolClosed) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}
