//! The client side: `msipphone ctl` and a second `msipphone` that hands its
//! request to the running phone.

use std::io::Write;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use super::ipc::{self, Endpoint, IpcError};
use super::reply::Reply;

/// The longest reply line read (a Status with many calls stays far below).
const MAX_REPLY: u64 = 1 << 20;

/// How long a reply may take: `SendDTMF` with pauses and `Message` (which
/// waits for the far end) are the slow ones.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(90);

/// Why a request got no reply.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The channel cannot be reached.
    #[error(transparent)]
    Ipc(#[from] IpcError),
    /// The connection failed midway.
    #[error("the control connection failed: {0}")]
    Io(std::io::Error),
    /// The phone closed the connection without a reply.
    #[error("the phone closed the connection without a reply")]
    NoReply,
    /// No reply in time.
    #[error("no reply within {} s", REPLY_TIMEOUT.as_secs())]
    Timeout,
    /// The reply is not ours.
    #[error("the reply is not valid JSON: {0}")]
    BadReply(String),
}

impl From<std::io::Error> for ClientError {
    fn from(e: std::io::Error) -> Self {
        ClientError::Io(e)
    }
}

/// Sends one request line and returns the reply.
pub async fn request(endpoint: &Endpoint, line: &str) -> Result<Reply, ClientError> {
    let stream = ipc::connect(endpoint).await?;
    let (read, mut write) = tokio::io::split(stream);
    let mut request = line.replace(['\r', '\n'], " ");
    request.push('\n');
    // A phone that refuses us (another user) answers and closes without
    // reading: a failed write still leaves its reply to read.
    let wrote = match write.write_all(request.as_bytes()).await {
        Ok(()) => write.flush().await,
        Err(e) => Err(e),
    };
    let mut reader = BufReader::new(read);
    let reply = tokio::time::timeout(REPLY_TIMEOUT, read_reply(&mut reader))
        .await
        .map_err(|_| ClientError::Timeout)?;
    match (reply, wrote) {
        (Ok(reply), _) => Ok(reply),
        (Err(_), Err(e)) => Err(ClientError::Io(e)),
        (Err(e), Ok(())) => Err(e),
    }
}

async fn read_reply<R: tokio::io::AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
) -> Result<Reply, ClientError> {
    let mut line = Vec::new();
    (&mut *reader)
        .take(MAX_REPLY)
        .read_until(b'\n', &mut line)
        .await?;
    if line.is_empty() {
        return Err(ClientError::NoReply);
    }
    serde_json::from_slice(&line).map_err(|e| ClientError::BadReply(e.to_string()))
}

/// Subscribes and copies the acknowledgement, then every event line, to
/// `out` until the phone stops.
/// Returns the refusal when the phone does not accept the subscription.
pub async fn subscribe(endpoint: &Endpoint, out: &mut impl Write) -> Result<Reply, ClientError> {
    let stream = ipc::connect(endpoint).await?;
    let (read, mut write) = tokio::io::split(stream);
    write.write_all(b"Subscribe\n").await?;
    write.flush().await?;
    let mut reader = BufReader::new(read);
    let first = tokio::time::timeout(REPLY_TIMEOUT, read_reply(&mut reader))
        .await
        .map_err(|_| ClientError::Timeout)??;
    if first.code != 0 {
        return Ok(first);
    }
    // The acknowledgement first, so a script knows it hears everything
    // from here on; events carry `event`, replies `code`.
    out.write_all(first.to_line().as_bytes())?;
    out.flush()?;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(first);
        }
        out.write_all(line.as_bytes())?;
        out.flush()?;
    }
}
